// Walking Noise operators (Borras, Klein, Fröning, arXiv 2212.10430): additive x + N(0, σ_add),
// multiplicative x · N(1, σ_mul), and both (x · N(1, σ_mul) + N(0, σ_add)). Element k of a
// buffer uses normal first + k of the stream for the additive part and normal 2^62 + first + k
// for the multiplicative part, so each element's noise is a pure function of its global index
// and a kind of noise that is off costs nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "models/philox.h"

namespace faultline::models {

inline void apply_noise(const CounterRng& rng, std::uint64_t first, float sigma_add, float sigma_mul, float* x, std::int64_t n) {
  constexpr std::uint64_t kMultiplicative = std::uint64_t{1} << 62;
  thread_local std::vector<float> normals;
  normals.resize(static_cast<std::size_t>(n));
  if (sigma_mul != 0.0f) {
    rng.fill_normal(kMultiplicative + first, static_cast<std::uint64_t>(n), normals.data());
    for (std::int64_t k = 0; k < n; ++k) x[k] *= 1.0f + sigma_mul * normals[k];
  }
  if (sigma_add != 0.0f) {
    rng.fill_normal(first, static_cast<std::uint64_t>(n), normals.data());
    for (std::int64_t k = 0; k < n; ++k) x[k] += sigma_add * normals[k];
  }
}

}  // namespace faultline::models
