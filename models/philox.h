// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3", SC'11). A draw is a pure function of (key, counter), so every
// random number in Faultline is a function of (seed, stream, element index) and results do not
// depend on thread count, batch split or evaluation order (DESIGN.md).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

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

  // Standard normal: Box–Muller on the word pairs (0, 1) and (2, 3) of block i / 4, so element i
  // is a pure function of i.
  float normal(std::uint64_t index) const {
    const PhiloxCounter w = block(index >> 2);
    const unsigned lane = index & 3;
    const unsigned pair = lane & 2;
    return box_muller(w[pair], w[pair + 1], (lane & 1) != 0);
  }

  // Fills out[k] = normal(first + k) for k < n, four at a time.
  void fill_normal(std::uint64_t first, std::uint64_t n, float* out) const {
    std::uint64_t k = 0;
    while (k < n) {
      const std::uint64_t index = first + k;
      if ((index & 3) == 0 && k + 4 <= n) {
        const PhiloxCounter w = block(index >> 2);
        out[k] = box_muller(w[0], w[1], false);
        out[k + 1] = box_muller(w[0], w[1], true);
        out[k + 2] = box_muller(w[2], w[3], false);
        out[k + 3] = box_muller(w[2], w[3], true);
        k += 4;
      } else {
        out[k] = normal(index);
        ++k;
      }
    }
  }

 private:
  static float to_unit(std::uint32_t bits) { return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f); }

  // Box & Muller (1958): u1 in (0, 1] so that log(u1) is finite.
  static float box_muller(std::uint32_t a, std::uint32_t b, bool second) {
    const double u1 = (static_cast<double>(a >> 8) + 1.0) * (1.0 / 16777216.0);
    const double u2 = static_cast<double>(b >> 8) * (1.0 / 16777216.0);
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    return static_cast<float>(second ? r * std::sin(angle) : r * std::cos(angle));
  }

  PhiloxKey key_;
  std::uint32_t stream_lo_, stream_hi_;
};

}  // namespace faultline::models
