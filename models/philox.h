// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3", SC'11). A draw is a pure function of (key, counter), so every
// random number in Faultline is a function of (seed, stream, element index) and results do not
// depend on thread count, batch split or evaluation order (DESIGN.md).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "models/det_math.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace faultline::models {

using PhiloxCounter = std::array<std::uint32_t, 4>;
using PhiloxKey = std::array<std::uint32_t, 2>;

// The Philox4x32 bijection with 10 rounds. Round constants from the paper (Section 4.3 and
// Random123's philox.h): multipliers 0xD2511F53, 0xCD9E8D57; key increments (Weyl sequence)
// 0x9E3779B9 (golden ratio), 0xBB67AE85 (sqrt(3) − 1).
inline PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  constexpr std::uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kW0;
      key[1] += kW1;
    }
    const std::uint64_t p0 = kM0 * ctr[0];
    const std::uint64_t p1 = kM1 * ctr[2];
    ctr = {static_cast<std::uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<std::uint32_t>(p1),
           static_cast<std::uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<std::uint32_t>(p0)};
  }
  return ctr;
}

// A stream of random numbers addressed by element index. The key is the user's seed; the stream
// id (64 bits) names the consumer (trial, layer, noise site, purpose) and fills the counter's
// high words, the element index its low words.
class CounterRng {
 public:
  CounterRng(std::uint64_t seed, std::uint64_t stream)
      : key_{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)},
        stream_lo_(static_cast<std::uint32_t>(stream)), stream_hi_(static_cast<std::uint32_t>(stream >> 32)) {}

  // The four 32-bit words of block `block`.
  PhiloxCounter block(std::uint64_t block) const {
    return philox4x32_10({static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), stream_lo_, stream_hi_}, key_);
  }

  // Uniform in [0, 1) with 24 random bits: element i uses word i % 4 of block i / 4.
  float uniform(std::uint64_t index) const { return to_unit(block(index >> 2)[index & 3]); }

  // Uniform integer in [0, n) for n ≥ 1 (64-bit multiply-shift; bias below 2^-32 · n).
  std::uint32_t below(std::uint64_t index, std::uint32_t n) const {
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(block(index >> 2)[index & 3]) * n) >> 32);
  }

  // Standard normal by inversion: element i is Φ⁻¹(u) for the 32-bit word i % 4 of block i / 4,
  // u = (word + 1/2)/2^32, so each element is a pure function of its index and the tails reach
  // about ±6.2σ. Φ⁻¹ is Acklam's rational approximation (relative error below 1.15e-9 in exact
  // arithmetic): its central branch (95 % of draws) is evaluated in float, the tails in double.
  float normal(std::uint64_t index) const {
    const std::uint32_t word = block(index >> 2)[index & 3];
    return is_tail(word) ? tail_normal(word) : central_normal(word);
  }

  // Φ⁻¹ of word's uniform in the central region (Acklam's rational approximation, below), in
  // float arithmetic that vectorizes.
  static float central_normal(std::uint32_t word) {
    const float q = (static_cast<float>(static_cast<std::int32_t>(word ^ 0x80000000u)) + 0.5f) * (1.0f / 4294967296.0f);
    const float r = q * q;
    const float num = (((((-3.969683028665376e+01f * r + 2.209460984245205e+02f) * r - 2.759285104469687e+02f) * r +
                         1.383577518672690e+02f) * r - 3.066479806614716e+01f) * r + 2.506628277459239e+00f) * q;
    const float den = ((((-5.447609879822406e+01f * r + 1.615858368580409e+02f) * r - 1.556989798598866e+02f) * r +
                        6.680131188771972e+01f) * r - 1.328068155288572e+01f) * r + 1.0f;
    return num / den;
  }
  // Fills out[k] = normal(first + k) for k < n: the same values as normal(), computed in passes
  // that vectorize (central branch for all, then the tails fixed up; models/philox.cpp, the
  // central pass compiled for AVX2 and the baseline, the same bits).
  void fill_normal(std::uint64_t first, std::uint64_t n, float* out) const;

  // Blocks b .. b+7 into out[0..32) (block-major) with AVX2, the same words as block(); false
  // (nothing written) on a CPU without it (models/philox.cpp).
  bool blocks8(std::uint64_t b, std::uint32_t* out) const;

  // Blocks b, b+1, b+2, b+3 into out[0..16) (block-major): with SSE2, the four Philox instances
  // run in the four lanes of a vector (bit-identical to block()).
  void blocks4(std::uint64_t b, std::uint32_t* out) const {
#if defined(__SSE2__)
    __m128i c0 = _mm_set_epi32(static_cast<int>(static_cast<std::uint32_t>(b + 3)), static_cast<int>(static_cast<std::uint32_t>(b + 2)),
                               static_cast<int>(static_cast<std::uint32_t>(b + 1)), static_cast<int>(static_cast<std::uint32_t>(b)));
    __m128i c1 = _mm_set_epi32(static_cast<int>((b + 3) >> 32), static_cast<int>((b + 2) >> 32), static_cast<int>((b + 1) >> 32),
                               static_cast<int>(b >> 32));
    __m128i c2 = _mm_set1_epi32(static_cast<int>(stream_lo_));
    __m128i c3 = _mm_set1_epi32(static_cast<int>(stream_hi_));
    const __m128i m0 = _mm_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm_set1_epi32(static_cast<int>(0xCD9E8D57u));
    std::uint32_t k0 = key_[0], k1 = key_[1];
    for (int round = 0; round < 10; ++round) {
      if (round > 0) {
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      __m128i hi0, lo0, hi1, lo1;
      mulhilo4(c0, m0, &hi0, &lo0);
      mulhilo4(c2, m1, &hi1, &lo1);
      const __m128i n0 = _mm_xor_si128(_mm_xor_si128(hi1, c1), _mm_set1_epi32(static_cast<int>(k0)));
      const __m128i n2 = _mm_xor_si128(_mm_xor_si128(hi0, c3), _mm_set1_epi32(static_cast<int>(k1)));
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
    }
    // Transpose lanes (block i) × words (c0..c3) to block-major order.
    const __m128i t0 = _mm_unpacklo_epi32(c0, c1), t1 = _mm_unpacklo_epi32(c2, c3);
    const __m128i t2 = _mm_unpackhi_epi32(c0, c1), t3 = _mm_unpackhi_epi32(c2, c3);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi64(t0, t1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), _mm_unpackhi_epi64(t0, t1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpacklo_epi64(t2, t3));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 12), _mm_unpackhi_epi64(t2, t3));
#else
    for (int i = 0; i < 4; ++i) {
      const PhiloxCounter w = block(b + static_cast<std::uint64_t>(i));
      for (int j = 0; j < 4; ++j) out[4 * i + j] = w[j];
    }
#endif
  }

 private:
#if defined(__SSE2__)
  // 32×32 → 64-bit products of four lanes: high and low halves.
  static void mulhilo4(__m128i a, __m128i m, __m128i* hi, __m128i* lo) {
    const __m128i even = _mm_mul_epu32(a, m);                      // lanes 0, 2: [lo0 hi0 lo2 hi2]
    const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(a, 32), m);   // lanes 1, 3: [lo1 hi1 lo3 hi3]
    const __m128i u0 = _mm_unpacklo_epi32(even, odd);               // [lo0 lo1 hi0 hi1]
    const __m128i u1 = _mm_unpackhi_epi32(even, odd);               // [lo2 lo3 hi2 hi3]
    *lo = _mm_unpacklo_epi64(u0, u1);
    *hi = _mm_unpackhi_epi64(u0, u1);
  }
#endif

  // Acklam's coefficients (P. J. Acklam, "An algorithm for computing the inverse normal
  // cumulative distribution function"); p_low = 0.02425 separates the central region.
  static constexpr double kPLow = 0.02425;
  // |u − 1/2| > 1/2 − p_low in units of 2^-32, decided on the integer so that both paths agree.
  static bool is_tail(std::uint32_t word) {
    const std::int64_t centered = static_cast<std::int64_t>(word) - 2147483648LL;  // (u − 1/2)·2^32 − 1/2
    constexpr std::int64_t limit = static_cast<std::int64_t>((0.5 - kPLow) * 4294967296.0);
    return centered >= limit || centered < -limit;
  }
  static float tail_normal(std::uint32_t word) {
    const double p = (static_cast<double>(word) + 0.5) * (1.0 / 4294967296.0);
    const double q = std::sqrt(-2.0 * det::log(p < 0.5 ? p : 1.0 - p));
    const double x = (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q -
                        2.549732539343734e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00) /
                     ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q +
                       3.754408661907416e+00) * q + 1.0);
    return static_cast<float>(p < 0.5 ? x : -x);
  }

  static float to_unit(std::uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

  PhiloxKey key_;
  std::uint32_t stream_lo_, stream_hi_;
};

}  // namespace faultline::models
