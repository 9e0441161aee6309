// The behavioural twin of approx_mac_array (sim/rtl_twin.h): truncated sign-magnitude array
// multipliers that drop the partial-product bits below column drop_bits (register 0, 4 bits),
// models/mvm_int8.h's approx_multiply, summed exactly in int32.
#include "models/mvm_int8.h"
#include "sim/rtl_twin.h"

void faultline_rtl_twin(const faultline::rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y) {
  const int drop = static_cast<int>(unit.reg("drop_bits"));
  faultline::models::int8_matrix_vector(unit.weights, x, y, unit.outputs, unit.inputs, drop);
}
