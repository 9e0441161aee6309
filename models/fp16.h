// IEEE 754 binary16 ("half", fp16) conversions, as the Graphcore IPU's numerics need them (issue
// 16): float → half rounded to nearest (ties to even), or stochastically -- rounded away from zero
// with probability equal to the discarded fraction of a half's quantum, the IPU's hardware
// stochastic rounding (Graphcore, "IPU Programmer's Guide", floating-point: stochastic rounding
// of fp32 → fp16 conversions and fp16 arithmetic) -- and half → float (exact).
//
// Both roundings work on the float's bits in integers, so they are the same on every machine:
// the float's significand m (24 bits with the hidden one) times 2^(e − 23) is cut at the half's
// quantum 2^(max(e, −14) − 10); kept quanta and the remainder decide. Subnormal halves (quantum
// 2^−24), overflow to infinity (|x| ≥ 65520 rounds to inf to nearest; 65504 is the largest half),
// signed zeros, infinities and NaNs (quiet, payload's top bits kept) are handled as IEEE 754 does.
#pragma once

#include <cstdint>
#include <cstring>

namespace faultline::models::fp16 {

inline std::uint32_t float_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

namespace detail {
// `random` supplies the stochastic decision: nullptr rounds to nearest even; otherwise 64
// uniformly random bits, of which the low `shift` are compared with the remainder.
inline std::uint16_t from_float(float x, const std::uint64_t* random) {
  const std::uint32_t f = float_bits(x);
  const std::uint16_t sign = static_cast<std::uint16_t>((f >> 16) & 0x8000u);
  const std::uint32_t a = f & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) {  // infinity or NaN
    if (a == 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x03FFu));  // quiet NaN
  }
  int e = static_cast<int>(a >> 23) - 127;
  std::uint64_t m = a & 0x7FFFFFu;
  if (e == -127) e = -126;  // float subnormal: no hidden bit
  else m |= 0x800000u;
  if (e >= 16) return static_cast<std::uint16_t>(sign | 0x7C00u);  // ≥ 2^16: infinity either way
  const int shift = 13 + (e < -14 ? -14 - e : 0);  // bits of m below the half's quantum
  std::uint64_t kept, rem;
  if (shift >= 64) {
    kept = 0;
    rem = m;  // < 2^24, far below half a quantum
  } else {
    kept = m >> shift;
    rem = m & ((std::uint64_t{1} << shift) - 1);
  }
  if (random == nullptr) {
    if (shift < 64) {
      const std::uint64_t half = std::uint64_t{1} << (shift - 1);
      if (rem > half || (rem == half && (kept & 1u))) ++kept;
    }
  } else if (rem != 0 && shift < 64) {
    // Away from zero with probability rem / 2^shift (shift ≤ 63 bits of randomness compared).
    if ((*random & ((std::uint64_t{1} << shift) - 1)) < rem) ++kept;
  }
  // kept quanta of 2^(qe) with qe + 24 = max(e, −14) + 14: normal halves carry the hidden bit in
  // kept (1024 ≤ kept ≤ 2048, a carry moves into the exponent), subnormals have kept ≤ 1024.
  const std::uint64_t bits = (static_cast<std::uint64_t>(e < -14 ? 0 : e + 14) << 10) + kept;
  return static_cast<std::uint16_t>(sign | (bits >= 0x7C00u ? 0x7C00u : bits));
}
}  // namespace detail

// float → half, rounded to nearest, ties to even.
inline std::uint16_t from_float(float x) { return detail::from_float(x, nullptr); }
// float → half, rounded stochastically with 64 uniformly random bits (e.g. a Philox draw).
inline std::uint16_t from_float_stochastic(float x, std::uint64_t random) { return detail::from_float(x, &random); }

// float → the float value of its half rounded to nearest (to_float(from_float(x))), with a fast
// path for the normal halves below 65504 (a round-half-to-even at the 13th bit of the float's
// significand; a carry moves into the exponent as it should) -- the case of almost every value a
// network computes. Same bits as the slow path (tested on every 2^k-spaced sample of the range).
inline float round_nearest(float x);
// The same for stochastic rounding with 64 random bits.
inline float round_stochastic(float x, std::uint64_t random);

// half → float (exact).
inline float to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x03FFu;
  std::uint32_t f;
  if (exponent == 0x1F) {
    f = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    f = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    f = sign;
  } else {  // subnormal half: normalize
    int e = -1;
    std::uint32_t m = mantissa;
    while (!(m & 0x0400u)) {
      m <<= 1;
      ++e;
    }
    f = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((m & 0x03FFu) << 13);
  }
  float x;
  std::memcpy(&x, &f, 4);
  return x;
}

inline float round_nearest(float x) {
  const std::uint32_t b = float_bits(x), a = b & 0x7FFFFFFFu;
  if (a >= 0x38800000u && a < 0x477FE000u) {  // 2^-14 ≤ |x| < 65504
    const std::uint32_t r = (b + 0x0FFFu + ((b >> 13) & 1u)) & ~0x1FFFu;
    float y;
    std::memcpy(&y, &r, 4);
    return y;
  }
  return to_float(from_float(x));
}

inline float round_stochastic(float x, std::uint64_t random) {
  const std::uint32_t b = float_bits(x), a = b & 0x7FFFFFFFu;
  if (a >= 0x38800000u && a < 0x477FE000u) {
    // Away from zero when the low 13 random bits are below the 13 discarded bits (as from_float).
    std::uint32_t r = b & ~0x1FFFu;
    if ((random & 0x1FFFu) < (b & 0x1FFFu)) r += 0x2000u;
    float y;
    std::memcpy(&y, &r, 4);
    return y;
  }
  return to_float(from_float_stochastic(x, random));
}

}  // namespace faultline::models::fp16
