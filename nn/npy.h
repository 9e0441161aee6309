// NumPy .npy files (format versions 1.0 to 3.0, numpy/lib/format.py): little-endian float32,
// float64 (converted to float32), int64 and int32 (held as int64), C order.
#pragma once

#include <string>

#include "nn/tensor.h"

namespace faultline::nn {

Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace faultline::nn
