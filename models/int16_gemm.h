// Exact integer products for hardware whose MACs are integer: C = A · Bᵀ over 16-bit operands with
// 32-bit sums. Integer sums do not depend on their order, so the kernel is free to use the widest
// multiply-add the CPU has (AVX2 pmaddwd, chosen at run time) and still give the same values on
// every machine.
#pragma once

#include <cstddef>
#include <cstdint>

namespace faultline::models {

// The depth the operands' rows are padded to (with zeros): a multiple of 16.
inline std::size_t int16_gemm_depth(std::size_t depth) { return (depth + 15) / 16 * 16; }

// c[r·outs + o] = Σ_k a[r·depth + k] · b[o·depth + k] for r < rows, o < outs; `depth` a multiple of
// 16 (int16_gemm_depth). The caller guarantees that no partial sum leaves int32 (|Σ_k |a·b|| <
// 2^31 for every output).
void int16_gemm_nt(const std::int16_t* a, std::size_t rows, const std::int16_t* b, std::size_t outs, std::size_t depth, std::int32_t* c);

}  // namespace faultline::models
