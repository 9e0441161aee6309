#include "nn/tensor.h"

#include <atomic>
#include <limits>

#include "models/error.h"

namespace faultline::nn {

const char* dtype_name(DType dtype) { return dtype == DType::Float32 ? "float32" : "int64"; }

std::string shape_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_string(shape));
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d)
      throw Error("shape " + shape_string(shape) + " has too many elements");
    n *= d;
  }
  return n;
}

namespace {
std::atomic<std::int64_t> tensor_element_limit{std::int64_t{1} << 34};
}  // namespace

void set_max_tensor_elements(std::int64_t elements) { tensor_element_limit = elements; }
std::int64_t max_tensor_elements() { return tensor_element_limit; }

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  numel_ = shape_numel(shape_);
  if (numel_ > tensor_element_limit)
    throw Error("a tensor of shape " + shape_string(shape_) + " (" + std::to_string(numel_) + " elements) exceeds the engine's limit of " +
                std::to_string(tensor_element_limit.load()) + " elements");
  if (dtype_ == DType::Float32)
    floats_.assign(static_cast<std::size_t>(numel_), 0.0f);
  else
    ints_.assign(static_cast<std::size_t>(numel_), 0);
}

namespace {
// Checks that `values` fills `shape`; returns the element count.
template <typename T>
std::int64_t checked_count(const Shape& shape, const std::vector<T>& values) {
  const std::int64_t n = shape_numel(shape);
  if (static_cast<std::int64_t>(values.size()) != n)
    throw Error("tensor of shape " + shape_string(shape) + " needs " + std::to_string(n) + " values, got " + std::to_string(values.size()));
  return n;
}
}  // namespace

Tensor Tensor::floats(Shape shape, std::vector<float> values) {
  Tensor t;
  t.numel_ = checked_count(shape, values);
  t.shape_ = std::move(shape);
  t.dtype_ = DType::Float32;
  t.floats_ = std::move(values);
  return t;
}

Tensor Tensor::ints(Shape shape, std::vector<std::int64_t> values) {
  Tensor t;
  t.numel_ = checked_count(shape, values);
  t.shape_ = std::move(shape);
  t.dtype_ = DType::Int64;
  t.ints_ = std::move(values);
  return t;
}

void Tensor::reshape(Shape shape) {
  if (shape_numel(shape) != numel_)
    throw Error("cannot reshape " + shape_string(shape_) + " to " + shape_string(shape));
  shape_ = std::move(shape);
}

Tensor Tensor::as(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out(shape_, dtype);
  if (dtype == DType::Float32) {
    for (std::int64_t k = 0; k < numel_; ++k) out.floats_[k] = static_cast<float>(ints_[k]);
  } else {
    for (std::int64_t k = 0; k < numel_; ++k) {
      const float v = floats_[k];
      // Float → int conversion truncates toward zero (ONNX Cast); out-of-range values saturate
      // instead of invoking undefined behaviour.
      if (!(v == v)) out.ints_[k] = 0;
      else if (v >= 9.2e18f) out.ints_[k] = std::numeric_limits<std::int64_t>::max();
      else if (v <= -9.2e18f) out.ints_[k] = std::numeric_limits<std::int64_t>::min();
      else out.ints_[k] = static_cast<std::int64_t>(v);
    }
  }
  return out;
}

std::vector<std::int64_t> Tensor::to_ints() const {
  if (dtype_ == DType::Int64) return ints_;
  return as(DType::Int64).ints_;
}

}  // namespace faultline::nn
