// The behavioural twin of shift_mvu (sim/rtl_twin.h): the exact int8 dot products summed in
// int32, then shifted right arithmetically by `shift` (rounded to nearest when `round` is set and
// shift > 0), then clamped to int16 when `saturate` is set -- computed in 64 bits so that the
// rounding term cannot overflow, as the RTL does in 33.
#include <algorithm>

#include "sim/rtl_twin.h"

void faultline_rtl_twin(const faultline::rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y) {
  const long long shift = unit.reg("shift");
  const bool round = unit.reg("round") != 0, saturate = unit.reg("saturate") != 0;
  for (int i = 0; i < unit.outputs; ++i) {
    std::int32_t sum = 0;
    for (int j = 0; j < unit.inputs; ++j) sum += static_cast<std::int32_t>(unit.weights[i * unit.inputs + j]) * x[j];
    long long v = sum;
    if (round && shift > 0) v += 1LL << (shift - 1);
    v >>= shift;  // arithmetic shift of a signed value (guaranteed from C++20; GCC and clang do it in C++17)
    if (saturate) v = std::clamp(v, -32768LL, 32767LL);
    y[i] = static_cast<std::int32_t>(v);
  }
}
