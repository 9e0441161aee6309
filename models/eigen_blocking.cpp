#include "models/eigen_blocking.h"

#include <Eigen/Core>

namespace faultline::models {

void fix_eigen_blocking() { Eigen::setCpuCacheSizes(kEigenL1Bytes, kEigenL2Bytes, kEigenL3Bytes); }

bool eigen_blocking_is_fixed() {
  return Eigen::l1CacheSize() == kEigenL1Bytes && Eigen::l2CacheSize() == kEigenL2Bytes && Eigen::l3CacheSize() == kEigenL3Bytes;
}

namespace {
// Before main, so before any product of any program that links models/.
const bool eigen_blocking_fixed_at_start = (fix_eigen_blocking(), true);
}  // namespace

}  // namespace faultline::models
