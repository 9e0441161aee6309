// Walking Noise operators (Borras, Klein, Fröning, arXiv 2212.10430): additive x + N(0, σ_add),
// multiplicative x · N(1, σ_mul), and both (x · N(1, σ_mul) + N(0, σ_add)). Element k of a
// buffer uses the normals with indices 2·(first + k) and 2·(first + k) + 1 of the stream, so
// each element's noise is a pure function of its global index.
#pragma once

#include <cstdint>
#include <vector>

#include "models/philox.h"

namespace faultline::models {

inline void apply_noise(const CounterRng& rng, std::uint64_t first, float sigma_add, float sigma_mul, float* x, std::int64_t n) {
  if (sigma_add == 0.0f && sigma_mul == 0.0f) return;
  thread_local std::vector<float> normals;
  normals.resize(static_cast<std::size_t>(2 * n));
  rng.fill_normal(2 * first, static_cast<std::uint64_t>(2 * n), normals.data());
  for (std::int64_t k = 0; k < n; ++k) x[k] = x[k] * (1.0f + sigma_mul * normals[2 * k]) + sigma_add * normals[2 * k + 1];
}

}  // namespace faultline::models
