#include "nn/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "models/error.h"
#include "models/files.h"


namespace faultline::nn {
namespace {

// Value of `key` in the header dict, e.g. 'descr': '<f4' → "'<f4'".
std::string header_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted = "'" + key + "'";
  auto pos = header.find(quoted);
  if (pos == std::string::npos) throw Error(path + ": NPY header has no '" + key + "' entry");
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) throw Error(path + ": malformed NPY header");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end = pos;
  if (end < header.size() && header[end] == '(') end = header.find(')', end) + 1;
  else if (end < header.size() && header[end] == '\'') end = header.find('\'', end + 1) + 1;
  else while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  if (end == 0 || end > header.size()) throw Error(path + ": malformed NPY header");
  return header.substr(pos, end - pos);
}

}  // namespace

Tensor load_npy(const std::string& path, std::string* stored_dtype) {
  return parse_npy(read_input_file(path), path, stored_dtype);
}

Tensor parse_npy(const std::string& bytes, const std::string& path, std::string* stored_dtype) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not an NPY file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(path + ": truncated NPY header");
    header_len = 0;
    for (int k = 3; k >= 0; --k) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + k]);
    offset = 12;
  } else {
    throw Error(path + ": NPY format version " + std::to_string(major) + " is not supported");
  }
  if (bytes.size() < offset + header_len) throw Error(path + ": truncated NPY header");
  const std::string header = bytes.substr(offset, header_len);
  const std::string descr = header_value(header, "descr", path);
  const std::string fortran = header_value(header, "fortran_order", path);
  const std::string shape_text = header_value(header, "shape", path);
  if (fortran != "False") throw Error(path + ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')') throw Error(path + ": malformed NPY shape " + shape_text);
  Shape shape;
  std::stringstream dims(shape_text.substr(1, shape_text.size() - 2));
  std::string item;
  while (std::getline(dims, item, ',')) {
    const auto first = item.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    try {
      std::size_t used = 0;
      const std::string digits = item.substr(first, item.find_last_not_of(' ') + 1 - first);
      const long long d = std::stoll(digits, &used);
      if (d < 0 || used != digits.size()) throw std::invalid_argument("not a dimension");
      shape.push_back(d);
    } catch (const std::exception&) {
      throw Error(path + ": malformed NPY shape " + shape_text);
    }
  }
  std::int64_t count = 0;
  try {
    count = shape_numel(shape);
  } catch (const Error&) {
    throw Error(path + ": NPY shape " + shape_text + " has too many elements");
  }
  if (stored_dtype) *stored_dtype = descr == "'<f4'" || descr == "'|f4'" ? "float32" : descr == "'<f8'" ? "float64" : descr == "'<i8'" ? "int64" : descr == "'<i4'" ? "int32" : descr == "'|u1'" ? "uint8" : descr;
  const char* data = bytes.data() + offset + header_len;
  const std::size_t available = bytes.size() - offset - header_len;
  auto need = [&](std::size_t element) {
    if (static_cast<std::size_t>(count) > available / element)
      throw Error(path + ": truncated NPY data (" + std::to_string(available) + " bytes for " + std::to_string(count) + " elements of " + descr + ")");
  };
  if (descr == "'<f4'" || descr == "'|f4'") {
    need(4);
    std::vector<float> v(static_cast<std::size_t>(count));
    if (count) std::memcpy(v.data(), data, v.size() * 4);
    return Tensor::floats(shape, std::move(v));
  }
  if (descr == "'<f8'") {
    need(8);
    std::vector<float> v(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < count; ++k) { double d; std::memcpy(&d, data + 8 * k, 8); v[k] = static_cast<float>(d); }
    return Tensor::floats(shape, std::move(v));
  }
  if (descr == "'<i8'") {
    need(8);
    std::vector<std::int64_t> v(static_cast<std::size_t>(count));
    if (count) std::memcpy(v.data(), data, v.size() * 8);
    return Tensor::ints(shape, std::move(v));
  }
  if (descr == "'<i4'") {
    need(4);
    std::vector<std::int64_t> v(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < count; ++k) { std::int32_t d; std::memcpy(&d, data + 4 * k, 4); v[k] = d; }
    return Tensor::ints(shape, std::move(v));
  }
  if (descr == "'|u1'") {
    need(1);
    std::vector<std::int64_t> v(static_cast<std::size_t>(count));
    for (std::int64_t k = 0; k < count; ++k) v[k] = static_cast<unsigned char>(data[k]);
    return Tensor::ints(shape, std::move(v));
  }
  throw Error(path + ": NPY dtype " + descr + " is not supported (float32, float64, int64, int32, uint8 are)");
}

void save_npy(const std::string& path, const Tensor& tensor) {
  std::string shape = "(";
  for (std::size_t k = 0; k < tensor.shape().size(); ++k) shape += std::to_string(tensor.shape()[k]) + (tensor.shape().size() == 1 ? "," : (k + 1 < tensor.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + (tensor.dtype() == DType::Float32 ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that magic + length + header + newline is a multiple of 64 bytes.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  if (tensor.dtype() == DType::Float32) bytes.append(reinterpret_cast<const char*>(tensor.f()), static_cast<std::size_t>(tensor.numel()) * 4);
  else bytes.append(reinterpret_cast<const char*>(tensor.i()), static_cast<std::size_t>(tensor.numel()) * 8);
  write_file_atomically(path, bytes);
}

}  // namespace faultline::nn
