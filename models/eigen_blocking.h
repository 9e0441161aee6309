// Eigen's matrix products cut their operands into blocks sized from the CPU cache sizes it
// detects at run time, and the blocking decides the order of the float sums: a 64×3000 by
// 3000×256 product gives different bits on machines with different caches. Faultline fixes the
// sizes for every program (DESIGN.md, "Randomness and reproducibility"): this file's static
// initializer sets them before main (models/ is linked whole into every program), and tests
// check that they are in force.
#pragma once

#include <cstddef>

namespace faultline::models {

// The cache sizes every Faultline program gives Eigen (bytes): a common x86-64 L1d/L2/L3 shape
// (32 KiB, 256 KiB, 8 MiB), not this machine's.
inline constexpr std::ptrdiff_t kEigenL1Bytes = 32 * 1024, kEigenL2Bytes = 256 * 1024, kEigenL3Bytes = 8 * 1024 * 1024;

// Sets them (idempotent; called from a static initializer, and callable again by a program that
// changed them).
void fix_eigen_blocking();
// True when Eigen uses the fixed sizes.
bool eigen_blocking_is_fixed();

}  // namespace faultline::models
