// The weight_variation kind: exact when every imperfection is off, the drawn variation has the
// declared statistics (tolerances from the sample size, 4 standard errors: two-sided confidence
// 99.994 %), and draws depend only on (seed, trial, layer, index).
#include <gtest/gtest.h>

#include <cmath>

#include "models/philox.h"
#include "models/substrate.h"
#include "hwcfg/hardware_config.h"

using namespace faultline;
using models::MatrixRM;

namespace {

MatrixRM random_matrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t stream) {
  MatrixRM m(rows, cols);
  const models::CounterRng rng(11, stream);
  // Away from zero, so that the ratio w'/w is well defined.
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = (rng.uniform(static_cast<std::uint64_t>(k)) < 0.5f ? -1.0f : 1.0f) * (0.5f + rng.uniform(static_cast<std::uint64_t>(k) + (1ull << 40)));
  return m;
}

std::unique_ptr<models::Substrate> make(double lognormal, double additive, double stuck) {
  models::Params p = models::default_params(models::find_substrate_kind("weight_variation")->params);
  p.set_number("lognormal_sigma", lognormal);
  p.set_number("additive_sigma", additive);
  p.set_number("stuck_at_zero_rate", stuck);
  return models::create_substrate("weight_variation", p);
}

// The programmed weights, read back through multiply with the identity.
MatrixRM programmed(models::Substrate& s, const MatrixRM& w, std::uint64_t seed, std::uint64_t trial) {
  s.program(w, {"l", "Gemm", 2, 0}, {seed, trial});
  const MatrixRM eye = MatrixRM::Identity(w.cols(), w.cols());
  MatrixRM y(w.cols(), w.rows());
  s.multiply(eye, y, {0});
  return y.transpose();
}

TEST(WeightVariation, ExactWhenEverythingIsOff) {
  auto s = make(0, 0, 0);
  const MatrixRM w = random_matrix(40, 30, 1), x = random_matrix(17, 30, 2);
  s->program(w, {"l", "Gemm", 0, 0}, {1, 0});
  MatrixRM y(17, 40);
  s->multiply(x, y, {0});
  const MatrixRM exact = x * w.transpose();
  EXPECT_EQ(y, exact);
}

TEST(WeightVariation, LogNormalVariationHasSigma) {
  const double sigma = 0.2;
  auto s = make(sigma, 0, 0);
  const MatrixRM w = random_matrix(200, 100, 3);
  const MatrixRM v = programmed(*s, w, 5, 0);
  const double n = static_cast<double>(w.size());
  double sum = 0, sq = 0;
  for (Eigen::Index k = 0; k < w.size(); ++k) {
    const double theta = std::log(static_cast<double>(v.data()[k]) / w.data()[k]);
    sum += theta;
    sq += theta * theta;
  }
  const double mean = sum / n, var = (sq - n * mean * mean) / (n - 1);
  EXPECT_NEAR(mean, 0.0, 4 * sigma / std::sqrt(n));
  // (n−1)s²/σ² ~ χ²(n−1): s²/σ² has standard deviation √(2/(n−1)).
  EXPECT_NEAR(var / (sigma * sigma), 1.0, 4 * std::sqrt(2 / (n - 1)));
}

TEST(WeightVariation, AdditiveNoiseIsRelativeToTheLargestWeight) {
  const double sigma = 0.05;
  auto s = make(0, sigma, 0);
  const MatrixRM w = random_matrix(200, 100, 4);
  const MatrixRM v = programmed(*s, w, 6, 0);
  const double n = static_cast<double>(w.size()), scale = sigma * w.cwiseAbs().maxCoeff();
  const Eigen::ArrayXd e = (v - w).cast<double>().reshaped().array();
  const double var = (e - e.mean()).square().sum() / (n - 1);
  EXPECT_NEAR(e.mean(), 0.0, 4 * scale / std::sqrt(n));
  EXPECT_NEAR(var / (scale * scale), 1.0, 4 * std::sqrt(2 / (n - 1)));
}

TEST(WeightVariation, StuckAtZeroRateAndCounters) {
  const double rate = 0.02;
  auto s = make(0, 0, rate);
  const MatrixRM w = random_matrix(200, 100, 5);
  const MatrixRM v = programmed(*s, w, 7, 0);
  const double n = static_cast<double>(w.size());
  const double zeros = static_cast<double>((v.array() == 0.0f).count());
  // Binomial(n, rate): standard deviation √(n·rate·(1−rate)).
  EXPECT_NEAR(zeros, n * rate, 4 * std::sqrt(n * rate * (1 - rate)));
  std::map<std::string, double> counters;
  s->add_counters(counters);
  EXPECT_EQ(counters["stuck_at_zero"], zeros);
  EXPECT_EQ(counters["weights"], n);
}

TEST(WeightVariation, DrawsDependOnSeedTrialAndLayerOnly) {
  const MatrixRM w = random_matrix(30, 20, 6);
  auto a = make(0.1, 0.01, 0.01), b = make(0.1, 0.01, 0.01);
  const MatrixRM first = programmed(*a, w, 9, 3);
  EXPECT_EQ(programmed(*b, w, 9, 3), first);        // the same key: the same bits
  EXPECT_NE(programmed(*b, w, 9, 4), first);        // another trial
  EXPECT_NE(programmed(*b, w, 10, 3), first);       // another seed
}

TEST(WeightVariation, PresetLoads) {
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config("weight_variation");
  ASSERT_EQ(config.units.size(), 1u);
  EXPECT_EQ(config.units[0].kind, "weight_variation");
  EXPECT_EQ(config.units[0].params.number("lognormal_sigma"), 0.1);
}

}  // namespace
