// Integer matrix-vector units: the behavioural twins of the RTL shipped in rtl/ (mac_array,
// approx_mac_array). Each must agree with its RTL bit for bit (tests/unit/rtl_test.cpp).
#pragma once

#include <cstdint>
#include <cstdlib>

namespace faultline::models {

// A truncated sign-magnitude array multiplier: the partial products |a|·b_k·2^k of the magnitudes
// are added with every bit below column `drop` removed, then the sign is applied; drop = 0 is the
// exact product. (Truncated array multipliers: Kidambi, El-Guibaly, Antoniou, IEEE TCAS-II 43(2),
// 1996.) The error is never positive in magnitude: |approx| ≤ |a·b|, and |a·b| − |approx| <
// 8·2^drop.
inline std::int32_t approx_multiply(std::int8_t a, std::int8_t b, int drop) {
  const std::uint32_t ma = static_cast<std::uint32_t>(std::abs(static_cast<int>(a)));
  const std::uint32_t mb = static_cast<std::uint32_t>(std::abs(static_cast<int>(b)));
  const std::uint32_t mask = (0xFFFFu << drop) & 0xFFFFu;
  std::uint32_t acc = 0;
  for (int k = 0; k < 8; ++k)
    if ((mb >> k) & 1u) acc = (acc + ((ma << k) & mask)) & 0xFFFFu;
  const std::int32_t magnitude = static_cast<std::int32_t>(acc);
  return ((a < 0) != (b < 0)) ? -magnitude : magnitude;
}

// y[i] = Σ_j w[i·inputs + j] · x[j] with int32 accumulation; products exact (drop = 0) or
// truncated (approx_multiply).
inline void int8_matrix_vector(const std::int8_t* w, const std::int8_t* x, std::int32_t* y, int outputs, int inputs, int drop) {
  for (int i = 0; i < outputs; ++i) {
    std::int32_t sum = 0;
    for (int j = 0; j < inputs; ++j)
      sum += drop == 0 ? static_cast<std::int32_t>(w[i * inputs + j]) * x[j] : approx_multiply(w[i * inputs + j], x[j], drop);
    y[i] = sum;
  }
}

}  // namespace faultline::models
