#include "models/philox.h"

#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace faultline::models {
namespace {

// The central branch of normal() for every word: float mul/add/div of the same operands at any
// vector width (no contraction, -ffp-contract=off), so the AVX2 clone, chosen at load time, gives
// the baseline's bits eight at a time.
__attribute__((target_clones("avx2", "default"))) void central_normals(const std::uint32_t* words, std::uint64_t n, float* out) {
  for (std::uint64_t j = 0; j < n; ++j) out[j] = CounterRng::central_normal(words[j]);
}

#if defined(__x86_64__)
// 32×32 → 64-bit products of the even and the odd lanes, recombined into high and low words.
__attribute__((target("avx2"))) inline void mulhilo(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Philox4x32-10 (Salmon et al., SC'11; as philox4x32_10 in philox.h) for blocks b .. b+7, one per
// 32-bit lane of AVX2 vectors, written block-major to out[0..32): integer arithmetic, so the
// same words as block() (tested).
__attribute__((target("avx2"))) void philox_blocks8(std::uint64_t b, std::uint32_t stream_lo, std::uint32_t stream_hi,
                                                    std::uint32_t k0, std::uint32_t k1, std::uint32_t* out) {
  std::uint32_t lo_words[8], hi_words[8];
  for (int i = 0; i < 8; ++i) {
    lo_words[i] = static_cast<std::uint32_t>(b + static_cast<std::uint64_t>(i));
    hi_words[i] = static_cast<std::uint32_t>((b + static_cast<std::uint64_t>(i)) >> 32);
  }
  __m256i c0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo_words));
  __m256i c1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi_words));
  __m256i c2 = _mm256_set1_epi32(static_cast<int>(stream_lo));
  __m256i c3 = _mm256_set1_epi32(static_cast<int>(stream_hi));
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u)), m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    __m256i hi0, lo0, hi1, lo1;
    mulhilo(c0, m0, &hi0, &lo0);
    mulhilo(c2, m1, &hi1, &lo1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(static_cast<int>(k1)));
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  // Lanes (block) × words (c0..c3) to block-major order; 128-bit halves hold blocks i and i + 4.
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpacklo_epi32(c2, c3);
  const __m256i t2 = _mm256_unpackhi_epi32(c0, c1), t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t1), u1 = _mm256_unpackhi_epi64(t0, t1);
  const __m256i u2 = _mm256_unpacklo_epi64(t2, t3), u3 = _mm256_unpackhi_epi64(t2, t3);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(u0, u1, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
}

const bool cpu_has_avx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

bool CounterRng::blocks8(std::uint64_t b, std::uint32_t* out) const {
#if defined(__x86_64__)
  if (!cpu_has_avx2) return false;
  philox_blocks8(b, stream_lo_, stream_hi_, key_[0], key_[1], out);
  return true;
#else
  (void)b, (void)out;
  return false;
#endif
}

void CounterRng::fill_normal(std::uint64_t first, std::uint64_t n, float* out) const {
  thread_local std::vector<std::uint32_t> words;
  words.resize(static_cast<std::size_t>(n));
  std::uint64_t k = 0;
  // Head: up to the next multiple of 16 elements (four blocks).
  while (k < n && ((first + k) & 15) != 0) {
    const std::uint64_t index = first + k;
    const PhiloxCounter w = block(index >> 2);
    for (unsigned lane = static_cast<unsigned>(index & 3); lane < 4 && k < n; ++lane, ++k) words[k] = w[lane];
  }
  // Body: eight blocks at a time where the CPU has AVX2, then four.
  while (k + 32 <= n && blocks8((first + k) >> 2, words.data() + k)) k += 32;
  for (; k + 16 <= n; k += 16) blocks4((first + k) >> 2, words.data() + k);
  while (k < n) {
    const std::uint64_t index = first + k;
    const PhiloxCounter w = block(index >> 2);
    for (unsigned lane = static_cast<unsigned>(index & 3); lane < 4 && k < n; ++lane, ++k) words[k] = w[lane];
  }
  central_normals(words.data(), n, out);
  for (std::uint64_t j = 0; j < n; ++j)
    if (is_tail(words[j])) out[j] = tail_normal(words[j]);
}

}  // namespace faultline::models
