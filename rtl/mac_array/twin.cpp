// The behavioural twin of mac_array (sim/rtl_twin.h): the exact int8 matrix-vector product with
// int32 accumulation, the same function the int8_digital kind's functional level uses.
#include "models/mvm_int8.h"
#include "sim/rtl_twin.h"

void faultline_rtl_twin(const faultline::rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y) {
  faultline::models::int8_matrix_vector(unit.weights, x, y, unit.outputs, unit.inputs, /*drop=*/0);
}
