cmake_minimum_required(VERSION 3.20)  # policies as in the project (IN_LIST, ...)
# Script mode (cmake -P): reads MODULE_DIR/module.txt and validates it as faultline_add_rtl would,
# ports included, without building anything. Used by module_txt_test.py.
#   cmake -DSOURCE_DIR=... -DMODULE_DIR=... -DVERILATOR_BIN=... -DVERILATOR_ROOT=... -P validate_module.cmake
include(${SOURCE_DIR}/cmake/FaultlineRtl.cmake)
faultline_read_module_txt("${MODULE_DIR}" args)
cmake_parse_arguments(RTL "" "${FAULTLINE_RTL_SINGLE_ARGS}" "${FAULTLINE_RTL_LIST_ARGS}" ${args})
faultline_rtl_validate()
message(STATUS "valid: ${RTL_NAME} (${RTL_OUTPUTS}x${RTL_INPUTS}, registers: ${register_names})")
