// Elementary functions whose results are the same bits on every x86-64 machine.
//
// glibc's libm picks among several builds of exp, log, pow, sin, cos, tanh, expf, ... at load
// time by the CPU's features (FMA/AVX2 variants through ifunc), and the variants may round
// differently in rare cases; any value that feeds a result (noise draws, drift, activations, the
// loss and the optimizer's schedule) therefore uses these instead (DESIGN.md, "Randomness and
// reproducibility"). They use only +, −, ×, ÷ and sqrt (exactly rounded by IEEE 754) on doubles,
// and the build turns off contraction into FMA (-ffp-contract=off), so each is a fixed sequence
// of correctly rounded operations. Accuracy: within a few units in the last place of a double
// (tested against libm in tests/unit/models_test.cpp), far below float precision.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace faultline::models::det {

namespace detail {
// 1/n! for n = 0..32 (constexpr: computed by the compiler, the same on every machine).
struct InverseFactorials {
  double v[33];
  constexpr InverseFactorials() : v() {
    double f = 1;
    for (int n = 0; n <= 32; ++n) {
      if (n > 1) f *= n;
      v[n] = 1.0 / f;
    }
  }
};
inline constexpr InverseFactorials kInvFact{};
// ln 2 split so that k·kLn2Hi is exact for |k| < 2^11 (Cody and Waite's range reduction).
inline constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 0x3FE62E42FEE00000
inline constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 − kLn2Hi
inline constexpr double kInvLn2 = 1.44269504088896338700e+00;
}  // namespace detail

// e^r for |r| ≤ ln2/2 + ε: Taylor series to r^13 (truncation below 1e-17 relative), Horner form.
inline double exp_reduced(double r) {
  double p = detail::kInvFact.v[13];
  for (int n = 12; n >= 0; --n) p = p * r + detail::kInvFact.v[n];
  return p;
}

inline double exp(double x) {
  if (std::isnan(x)) return x;
  if (x > 709.782712893384) return std::numeric_limits<double>::infinity();
  if (x < -745.1332191019412) return 0.0;
  const double k = std::nearbyint(x * detail::kInvLn2);
  const double r = (x - k * detail::kLn2Hi) - k * detail::kLn2Lo;
  return std::ldexp(exp_reduced(r), static_cast<int>(k));  // ldexp is exact (or rounds once in the subnormal range)
}

// e^x − 1 without cancellation near 0.
inline double expm1(double x) {
  if (std::fabs(x) < 0.3) {
    // Taylor series x + x²/2! + … + x^16/16! (truncation below 3e-20 relative for |x| < 0.3).
    double p = detail::kInvFact.v[16];
    for (int n = 15; n >= 1; --n) p = p * x + detail::kInvFact.v[n];
    return p * x;
  }
  return exp(x) - 1.0;
}

inline double log(double x) {
  if (std::isnan(x) || x < 0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0) return -std::numeric_limits<double>::infinity();
  if (std::isinf(x)) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m·2^e, m in [0.5, 1) (exact)
  if (m < 0.70710678118654752440) {
    m *= 2;
    --e;
  }
  // log m = 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716: the series s + s³/3 + … + s^23/23
  // (truncation below 1e-19 relative).
  const double s = (m - 1) / (m + 1), s2 = s * s;
  double p = 1.0 / 25;
  for (int n = 23; n >= 1; n -= 2) p = p * s2 + 1.0 / n;
  const double k = static_cast<double>(e);
  return (k * detail::kLn2Hi + 2 * s * p) + k * detail::kLn2Lo;
}

// a^b for a > 0 (and a = 0 with b > 0); the cases the models meet.
inline double pow(double a, double b) {
  if (a == 0) return b > 0 ? 0.0 : std::numeric_limits<double>::infinity();
  if (a < 0) return std::numeric_limits<double>::quiet_NaN();
  return exp(b * log(a));
}

// cos x: reduced by 2π (split in three parts, exact for the moderate arguments met here) to
// [−π, π], then the Taylor series to x^32 (truncation below 1e-17 absolute).
inline double cos(double x) {
  if (!std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  constexpr double kTwoPiHi = 6.28318530717958623200e+00, kTwoPiLo = 2.44929359829470635445e-16;
  const double k = std::nearbyint(x / kTwoPiHi);
  const double r = (x - k * kTwoPiHi) - k * kTwoPiLo, r2 = r * r;
  // The coefficient of r^n is (−1)^(n/2)/n!.
  double p = detail::kInvFact.v[32];
  for (int n = 30; n >= 2; n -= 2) p = p * r2 + ((n / 2) % 2 ? -detail::kInvFact.v[n] : detail::kInvFact.v[n]);
  return p * r2 + 1.0;
}

inline double tanh(double x) {
  if (std::isnan(x)) return x;
  const double a = std::fabs(x);
  if (a > 20) return std::copysign(1.0, x);  // 1 − tanh(20) < 1e-17
  const double t = expm1(2 * a);
  return std::copysign(t / (t + 2), x);
}

// Single-precision forms: computed in double and rounded once.
inline float exp(float x) { return static_cast<float>(exp(static_cast<double>(x))); }
inline float log(float x) { return static_cast<float>(log(static_cast<double>(x))); }
inline float tanh(float x) { return static_cast<float>(tanh(static_cast<double>(x))); }

}  // namespace faultline::models::det
