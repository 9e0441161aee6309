// fp16 conversions (models/fp16.h, issue 16): known values, every half round-trips, round to
// nearest picks the nearest half (ties to even) for random floats, stochastic rounding picks one of
// the two neighbours and is unbiased within a sample-size tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "models/fp16.h"
#include "models/philox.h"

using namespace faultline::models;

TEST(Fp16, KnownValues) {
  const struct {
    float x;
    std::uint16_t half;
  } cases[] = {
      {0.0f, 0x0000},      {-0.0f, 0x8000},     {1.0f, 0x3C00},       {-2.0f, 0xC000},     {0.5f, 0x3800},
      {65504.0f, 0x7BFF},  // largest half
      {65519.99f, 0x7BFF},  // below the midpoint to 65536: stays
      {65520.0f, 0x7C00},  // the midpoint, ties to even: infinity
      {1e6f, 0x7C00},      {-1e6f, 0xFC00},     {std::numeric_limits<float>::infinity(), 0x7C00},
      {0x1.0p-14f, 0x0400},  // smallest normal
      {0x1.0p-24f, 0x0001},  // smallest subnormal
      {0x1.8p-24f, 0x0002},  // 1.5 quanta: ties to even (2)
      {0x1.0p-25f, 0x0000},  // half a quantum: ties to even (0)
      {0x1.1p-25f, 0x0001},  // just above half a quantum
      {0x1.ffcp-15f, 0x0400},  // the largest subnormal's upper midpoint: ties to even, into the normals
      {1.0f + 0x1.0p-11f, 0x3C00},  // a tie between 1 and 1 + 2^-10: even (1)
      {1.0f + 0x1.8p-11f, 0x3C01},  // above the tie
      {1.0f + 0x1.0p-10f + 0x1.0p-11f, 0x3C02},  // tie between 0x3C01 and 0x3C02: even
      {3.14159265f, 0x4248},  // π: 3.140625
  };
  for (const auto& c : cases) {
    EXPECT_EQ(fp16::from_float(c.x), c.half) << c.x;
    if ((c.half & 0x7FFF) <= 0x7C00) EXPECT_EQ(fp16::from_float(fp16::to_float(c.half)), c.half) << c.x;
  }
  EXPECT_EQ(fp16::to_float(0x0001), 0x1.0p-24f);
  EXPECT_EQ(fp16::to_float(0x03FF), 0x1.ff8p-15f);
  EXPECT_EQ(fp16::to_float(0x7BFF), 65504.0f);
  EXPECT_TRUE(std::isinf(fp16::to_float(0xFC00)) && fp16::to_float(0xFC00) < 0);
  // NaN stays NaN (quiet), both ways; a float subnormal is far below the smallest half.
  const std::uint16_t nan = fp16::from_float(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  EXPECT_TRUE(std::isnan(fp16::to_float(0x7E00)));
  EXPECT_EQ(fp16::from_float(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(fp16::from_float_stochastic(std::numeric_limits<float>::quiet_NaN(), 0) & 0x7C00, 0x7C00);
  EXPECT_EQ(fp16::from_float_stochastic(1e6f, 0), 0x7C00);
}

// Every finite half converts to a float and back to itself; halves are ordered like their values.
TEST(Fp16, EveryHalfRoundTrips) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const std::uint16_t half = static_cast<std::uint16_t>(h);
    if ((half & 0x7C00) == 0x7C00 && (half & 0x03FF)) {
      EXPECT_TRUE(std::isnan(fp16::to_float(half)));
      continue;
    }
    ASSERT_EQ(fp16::from_float(fp16::to_float(half)), half) << h;
    ASSERT_EQ(fp16::from_float_stochastic(fp16::to_float(half), ~std::uint64_t{0}), half) << h;  // exact: nothing to round
    if ((half & 0x7FFF) < 0x7C00 && (half & 0x7FFF) > 0) ASSERT_LT(std::fabs(fp16::to_float(half - 1)), std::fabs(fp16::to_float(half))) << h;
  }
}

// Round to nearest: for random floats over the half range (normal, subnormal and overflowing),
// no other half is nearer, and a tie goes to the even one.
TEST(Fp16, RoundToNearestIsNearest) {
  const CounterRng rng(11, 1);
  for (std::uint64_t i = 0; i < 200000; ++i) {
    const float u = rng.uniform(2 * i), v = rng.uniform(2 * i + 1);
    const float x = (v < 0.5f ? -1.0f : 1.0f) * std::ldexp(1.0f + u, static_cast<int>(v * 48) - 30);  // 2^-30 .. 2^18
    const std::uint16_t h = fp16::from_float(x);
    const double r = fp16::to_float(h);
    if (std::isinf(r)) {
      ASSERT_GE(std::fabs(x), 65520.0f) << x;
      continue;
    }
    for (int d : {-1, 1}) {
      const std::uint16_t n = static_cast<std::uint16_t>(h + d);
      if ((h & 0x7FFF) == 0 && d < 0) continue;
      if ((n & 0x7C00) == 0x7C00) continue;
      const double other = fp16::to_float(n);
      const double dr = std::fabs(static_cast<double>(x) - r), dn = std::fabs(static_cast<double>(x) - other);
      ASSERT_TRUE(dr < dn || (dr == dn && (h & 1) == 0)) << x << " -> " << r << " vs " << other;
    }
  }
}

// Stochastic rounding gives one of the two neighbours, and its mean is the input: for 20 values
// between neighbours (normal and subnormal), the mean of N = 100 000 conversions is within 5
// standard errors q·sqrt(p(1 − p)/N) of x (two-sided 99.99994 % for each).
TEST(Fp16, StochasticRoundingIsUnbiased) {
  const CounterRng rng(3, 2);
  const float values[] = {1.0f + 0x1.0p-12f, 1.0f + 0x1.8p-11f, 0.1f, -0.1f, 3.14159265f, 1000.3f, 65000.7f, 0x1.3p-20f, 0x1.0p-25f, -0x1.7p-23f,
                          2.5e-3f, 7.77f, -123.456f, 0.33333334f, 1e-5f, 4097.0f, 0.999f, 2048.5f, 0x1.fffp-15f, 6.1e-5f};
  const int n = 100000;
  for (std::size_t k = 0; k < sizeof values / sizeof values[0]; ++k) {
    const float x = values[k];
    const std::uint16_t lo_half = [&] {  // the neighbour toward zero
      std::uint16_t h = fp16::from_float(x);
      if (std::fabs(fp16::to_float(h)) > std::fabs(x)) --h;
      return h;
    }();
    const double lo = fp16::to_float(lo_half), hi = fp16::to_float(static_cast<std::uint16_t>(lo_half + 1));
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      const PhiloxCounter w = rng.block(static_cast<std::uint64_t>(k) * n + static_cast<std::uint64_t>(i));
      const std::uint64_t bits = static_cast<std::uint64_t>(w[0]) | static_cast<std::uint64_t>(w[1]) << 32;
      const double r = fp16::to_float(fp16::from_float_stochastic(x, bits));
      ASSERT_TRUE(r == lo || r == hi) << x << " -> " << r;
      sum += r;
    }
    const double q = std::fabs(hi - lo), p = std::fabs(static_cast<double>(x) - lo) / q;
    const double standard_error = q * std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(sum / n, static_cast<double>(x), 5 * standard_error + 1e-12 * std::fabs(x)) << x;
  }
}

// The fast paths (round_nearest, round_stochastic) give the slow conversions' bits: every float
// whose top 19 bits (sign, exponent, 10 significand bits) take every value, with low bits from a
// hash, so every exponent, both signs, halfway ties and NaN/inf patterns are covered.
TEST(Fp16, FastRoundingEqualsTheConversions) {
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  for (std::uint32_t top = 0; top < (1u << 19); ++top) {
    for (int variant = 0; variant < 4; ++variant) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      std::uint32_t low = static_cast<std::uint32_t>(state >> 51);  // 13 random bits
      if (variant == 1) low = 0x1000;                               // an exact tie
      if (variant == 2) low = 0;                                    // exactly a half's value
      const std::uint32_t bits = top << 13 | low;
      float x;
      std::memcpy(&x, &bits, 4);
      const float slow = fp16::to_float(fp16::from_float(x)), fast = fp16::round_nearest(x);
      const float slow_s = fp16::to_float(fp16::from_float_stochastic(x, state)), fast_s = fp16::round_stochastic(x, state);
      ASSERT_EQ(fp16::float_bits(slow), fp16::float_bits(fast)) << std::hexfloat << x;
      ASSERT_EQ(fp16::float_bits(slow_s), fp16::float_bits(fast_s)) << std::hexfloat << x;
    }
  }
}
