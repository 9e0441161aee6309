// Uniform quantizers shared by the hardware models (DAC, ADC, weight and activation codes).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace faultline::models {

// Round to nearest, ties to even (the IEEE default), for |x| < 2^22: adding and subtracting
// 1.5·2^23 leaves the rounded value. Written out because std::round/std::nearbyint are library
// calls on the SSE2 baseline and sit on the hot path of every DAC and ADC.
inline float round_half_even(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23
  return (x + kMagic) - kMagic;  // not folded: without -ffast-math the compiler keeps IEEE semantics
}

// Round to nearest, ties away from zero (std::round), for |x| < 2^22: ties-to-even, then a tie
// that went towards zero goes the other way (x − r is exact here). Branch-free, so loops over it
// vectorize where std::round is a library call.
inline float round_half_away(float x) {
  const float r = round_half_even(x);
  const float d = x - r;
  // tie up ? r + 1 : tie down ? r − 1 : r, with both neighbours computed and picked by bit masks:
  // GCC does not if-convert float selects under -ftrapping-math, so the ternary form keeps
  // branches and its loops do not vectorize.
  const float up = r + 1.0f, down = r - 1.0f;
  const std::uint32_t tie_up = 0u - static_cast<std::uint32_t>((d == 0.5f) & (x > 0.0f));
  const std::uint32_t tie_down = 0u - static_cast<std::uint32_t>((d == -0.5f) & (x < 0.0f));
  std::uint32_t r_bits, up_bits, down_bits;
  std::memcpy(&r_bits, &r, sizeof r);
  std::memcpy(&up_bits, &up, sizeof up);
  std::memcpy(&down_bits, &down, sizeof down);
  const std::uint32_t bits = (r_bits & ~(tie_up | tie_down)) | (up_bits & tie_up) | (down_bits & tie_down);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Symmetric signed quantizer: `bits` bits (2 to 16) give the integer codes −(2^(bits−1) − 1) …
// 2^(bits−1) − 1 (the most negative two's-complement code is left unused so that the grid is
// symmetric), with step = range / (2^(bits−1) − 1), rounding to nearest (ties to even). Values
// beyond the end codes saturate to them.
struct SymmetricQuantizer {
  SymmetricQuantizer(float range_, int bits_)
      : range(range_), bits(bits_), max_level(static_cast<float>((1 << (bits_ - 1)) - 1)), step_(range_ / max_level),
        inv_step_(max_level / range_) {}

  float range;
  int bits;
  float max_level;  // 2^(bits−1) − 1

  int max_code() const { return static_cast<int>(max_level); }
  float step() const { return step_; }
  // True when x lies beyond the end codes by more than half a step.
  bool saturates(float x) const {
    const float scaled = x * inv_step_;
    return scaled > max_level + 0.5f || scaled < -max_level - 0.5f;
  }
  // Integer code of x; *saturated set when x saturates.
  int code(float x, bool* saturated = nullptr) const {
    if (saturated) *saturated = saturates(x);
    return static_cast<int>(level(x));
  }
  // The code as a float: clamp, then round (branch-free, so loops over it vectorize).
  float level(float x) const { return round_half_even(std::min(std::max(x * inv_step_, -max_level), max_level)); }
  float quantize(float x, bool* saturated = nullptr) const {
    if (saturated) *saturated = saturates(x);
    return level(x) * step_;
  }

 private:
  float step_, inv_step_;
};

// Per-tensor symmetric weight codes of `bits` bits stored offset-binary (code = q + 2^(bits−1),
// q = round(w / scale) clamped to ±(2^(bits−1) − 1), scale = max|w| / (2^(bits−1) − 1)): how a
// weight buffer holds a layer (rram_memory, and the bytes the cycle level writes to its memory).
// Returns the scale.
inline float offset_binary_codes(const float* w, std::size_t n, int bits, std::vector<std::uint32_t>& codes) {
  const int qmax = (1 << (bits - 1)) - 1;
  float m = 0;
  for (std::size_t k = 0; k < n; ++k) m = std::max(m, std::abs(w[k]));
  const float scale = m > 0 ? m / static_cast<float>(qmax) : 1.0f;
  codes.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    long q = std::lround(w[k] / scale);
    q = std::max<long>(-qmax, std::min<long>(qmax, q));
    codes[k] = static_cast<std::uint32_t>(q + (1L << (bits - 1)));
  }
  return scale;
}

}  // namespace faultline::models
