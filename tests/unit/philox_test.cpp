#include <gtest/gtest.h>

#include <cstring>

#include <cmath>

#include "models/philox.h"

using faultline::models::CounterRng;
using faultline::models::philox4x32_10;

// Known-answer vectors of Philox4x32-10 published with Random123 (kat_vectors, "philox4x32 10").
TEST(Philox, KnownAnswerVectors) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (faultline::models::PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (faultline::models::PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (faultline::models::PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, DrawsArePureFunctionsOfIndex) {
  const CounterRng rng(42, 7);
  for (std::uint64_t first : {0ull, 3ull, 16ull, 1000003ull}) {
    std::vector<float> bulk(101);  // head, vectorized body of 16-element groups, tail
    rng.fill_normal(first, bulk.size(), bulk.data());
    for (std::size_t k = 0; k < bulk.size(); ++k) ASSERT_EQ(bulk[k], rng.normal(first + k)) << first << "+" << k;
  }
  // A long fill runs the vector loops (AVX2 on this machine when it has it): the same bits as
  // the scalar normal() of every index.
  std::vector<float> many(200003);
  rng.fill_normal(77, many.size(), many.data());
  for (std::size_t k = 0; k < many.size(); ++k) {
    const float one = rng.normal(77 + k);
    ASSERT_EQ(std::memcmp(&many[k], &one, sizeof(float)), 0) << k;
  }
  std::uint32_t four[16];
  rng.blocks4((std::uint64_t{1} << 32) - 2, four);  // crosses the 32-bit carry of the counter
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) EXPECT_EQ(four[4 * i + j], rng.block((std::uint64_t{1} << 32) - 2 + i)[j]);
  std::uint32_t eight[32];
  if (rng.blocks8((std::uint64_t{1} << 32) - 5, eight)) {  // this machine has AVX2
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(eight[4 * i + j], rng.block((std::uint64_t{1} << 32) - 5 + i)[j]);
  }
  EXPECT_NE(CounterRng(42, 7).uniform(0), CounterRng(42, 8).uniform(0));
  EXPECT_NE(CounterRng(42, 7).uniform(0), CounterRng(43, 7).uniform(0));
}

// Mean and variance of N standard normals: the sample mean has standard error 1/√N and the
// sample variance about √(2/N); both are checked at 5 standard errors (two-sided confidence
// 1 − 5.7e-7), so the test fails only for a real bias.
TEST(Philox, NormalHasUnitVariance) {
  const CounterRng rng(1, 2);
  const std::uint64_t n = 1 << 20;
  double sum = 0, sum_sq = 0;
  for (std::uint64_t k = 0; k < n; ++k) {
    const double v = rng.normal(k);
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(static_cast<double>(n)));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
}

// Uniform integers below n: each of n bins gets N/n draws; a chi-square statistic with n − 1
// degrees of freedom must stay under its 99.9 % quantile (for 9 dof: 27.88).
TEST(Philox, BelowIsUniform) {
  const CounterRng rng(5, 0);
  const int bins = 10;
  const std::uint64_t n = 200000;
  std::vector<double> count(bins, 0);
  for (std::uint64_t k = 0; k < n; ++k) {
    const auto v = rng.below(k, bins);
    ASSERT_LT(v, static_cast<std::uint32_t>(bins));
    count[v] += 1;
  }
  double chi2 = 0;
  for (double c : count) chi2 += (c - n / bins) * (c - n / bins) / (n / bins);
  EXPECT_LT(chi2, 27.88);
}
