// NumPy .npy files (format versions 1.0 to 3.0, numpy/lib/format.py): little-endian float32,
// float64 (converted to float32), int64, int32 and uint8 (held as int64), C order.
#pragma once

#include <string>

#include "nn/tensor.h"

namespace faultline::nn {

// `stored_dtype` (optional) receives the file's own element type ("int32", "float64", ...), which
// the tensor does not keep, so that messages can name what the file holds.
Tensor load_npy(const std::string& path, std::string* stored_dtype = nullptr);
// The same from the file's bytes; `path` names the source in errors.
Tensor parse_npy(const std::string& bytes, const std::string& path, std::string* stored_dtype = nullptr);
// Written whole or not at all (models/files.h).
void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace faultline::nn
