// `trace_noise`: the noise of a layer as fitted from a noise trace (traces/), replayed fast at the
// functional level. The exact product y = x·Wᵀ gets an error e = σ(y)·z with a signal-dependent
// spread σ(y) = sigma_offset + sigma_slope·|y| and z either standard normal (`shape: gaussian`)
// or drawn from the empirical quantile table of the traced z = e/σ(y) (`shape: quantiles`,
// piecewise-linear inverse CDF through the table), resampled on every read.
#pragma once

#include <array>

namespace faultline::models {

// Probabilities of the quantile table's entries (the parameters q001 … q999: permille).
inline constexpr std::array<double, 15> kTraceQuantileProbabilities = {0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
                                                                      0.6,   0.7,  0.8,  0.9, 0.95, 0.99, 0.999};
// Parameter name of table entry k ("q001", "q010", …, "q999").
const char* trace_quantile_param(std::size_t k);
// z for a uniform u in (0, 1) from the table `q` (inverse CDF, linear between entries and held
// at the end entries outside [0.001, 0.999]).
double trace_quantile_z(const std::array<double, 15>& q, double u);

}  // namespace faultline::models
