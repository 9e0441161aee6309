// Uniform quantizers shared by the hardware models (DAC, ADC, weight and activation codes).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace faultline::models {

// Symmetric signed quantizer: `bits` bits give the integer codes −(2^(bits−1) − 1) … 2^(bits−1) − 1
// (the most negative two's-complement code is left unused so that the grid is symmetric), with
// step = range / (2^(bits−1) − 1). Values beyond ±range saturate to the end codes.
struct SymmetricQuantizer {
  float range = 1.0f;
  int bits = 8;

  int max_code() const { return (1 << (bits - 1)) - 1; }
  float step() const { return range / static_cast<float>(max_code()); }
  // Integer code of x (rounded to nearest, ties away from zero); *saturated set when clipped.
  int code(float x, bool* saturated = nullptr) const {
    const float q = std::round(x / step());
    const float m = static_cast<float>(max_code());
    if (q > m || q < -m) {
      if (saturated) *saturated = true;
      return q > 0 ? max_code() : -max_code();
    }
    if (saturated) *saturated = false;
    return static_cast<int>(q);
  }
  float quantize(float x, bool* saturated = nullptr) const { return static_cast<float>(code(x, saturated)) * step(); }
};

}  // namespace faultline::models
