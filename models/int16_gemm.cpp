#include "models/int16_gemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace faultline::models {
namespace {

// Baseline: one output at a time; GCC vectorizes the 16-bit products summed into 32 bits with
// SSE2's pmaddwd.
void gemm_plain(const std::int16_t* a, std::size_t rows, const std::int16_t* b, std::size_t outs, std::size_t depth, std::int32_t* c) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < outs; ++o) {
      const std::int16_t* x = a + r * depth;
      const std::int16_t* w = b + o * depth;
      std::int32_t sum = 0;
      for (std::size_t k = 0; k < depth; ++k) sum += static_cast<std::int32_t>(x[k]) * static_cast<std::int32_t>(w[k]);
      c[r * outs + o] = sum;
    }
}

#if defined(__x86_64__)
// Sums of the eight 32-bit lanes of p0..p3: [Σp0, Σp1, Σp2, Σp3].
__attribute__((target("avx2"))) inline __m128i reduce4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// R rows × 4 outputs per step: R·4 accumulators of eight 32-bit lanes (R = 2: 8 accumulators,
// 4 weight vectors and an input in the 16 vector registers), 16 products of 16-bit pairs per
// pmaddwd.
template <int R>
__attribute__((target("avx2"))) void block_rx4(const std::int16_t* a, const std::int16_t* b, std::size_t depth, std::int32_t* c,
                                               std::size_t outs) {
  __m256i acc[R][4];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_si256();
  for (std::size_t k = 0; k < depth; k += 16) {
    __m256i w[4];
    for (int j = 0; j < 4; ++j) w[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j * depth + k));
    for (int i = 0; i < R; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * depth + k));
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(x, w[j]));
    }
  }
  for (int i = 0; i < R; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(c + i * outs), reduce4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
}

// One row × one output (the edges).
__attribute__((target("avx2"))) std::int32_t dot(const std::int16_t* a, const std::int16_t* b, std::size_t depth) {
  __m256i acc = _mm256_setzero_si256();
  for (std::size_t k = 0; k < depth; k += 16)
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + k)),
                                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + k))));
  const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  const __m128i t = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1)));
}

__attribute__((target("avx2"))) void gemm_avx2(const std::int16_t* a, std::size_t rows, const std::int16_t* b, std::size_t outs, std::size_t depth,
                                               std::int32_t* c) {
  const std::size_t outs4 = outs / 4 * 4;
  std::size_t r = 0;
  for (; r + 2 <= rows; r += 2)
    for (std::size_t o = 0; o < outs4; o += 4) block_rx4<2>(a + r * depth, b + o * depth, depth, c + r * outs + o, outs);
  for (; r < rows; ++r)
    for (std::size_t o = 0; o < outs4; o += 4) block_rx4<1>(a + r * depth, b + o * depth, depth, c + r * outs + o, outs);
  for (r = 0; r < rows; ++r)
    for (std::size_t o = outs4; o < outs; ++o) c[r * outs + o] = dot(a + r * depth, b + o * depth, depth);
}

const bool cpu_has_avx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

void int16_gemm_nt(const std::int16_t* a, std::size_t rows, const std::int16_t* b, std::size_t outs, std::size_t depth, std::int32_t* c) {
#if defined(__x86_64__)
  if (cpu_has_avx2) return gemm_avx2(a, rows, b, outs, depth, c);
#endif
  gemm_plain(a, rows, b, outs, depth, c);
}

}  // namespace faultline::models
