// Dense tensors for the NN engine: float32 for activations and weights, int64 for the shape
// arithmetic that ONNX exports carry (Shape, Gather, Concat feeding Reshape). Row-major
// ("C order"), images in NCHW.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace faultline::nn {

using Shape = std::vector<std::int64_t>;

enum class DType { Float32, Int64 };

const char* dtype_name(DType dtype);
std::string shape_string(const Shape& shape);
// Number of elements; throws faultline::Error for negative or overflowing dimensions.
std::int64_t shape_numel(const Shape& shape);
// The largest tensor (elements) the engine makes; larger ones fail with faultline::Error instead
// of exhausting memory. Default 2^34; the fuzz targets lower it to their memory limit.
void set_max_tensor_elements(std::int64_t elements);
std::int64_t max_tensor_elements();

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor of the given shape.
  explicit Tensor(Shape shape, DType dtype = DType::Float32);
  static Tensor floats(Shape shape, std::vector<float> values);
  static Tensor ints(Shape shape, std::vector<std::int64_t> values);
  static Tensor scalar(float value) { return floats({}, {value}); }

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  std::int64_t numel() const { return numel_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  std::int64_t dim(int axis) const { return shape_.at(static_cast<std::size_t>(axis)); }
  bool empty() const { return shape_.empty() && numel_ == 0; }

  float* f() { return floats_.data(); }
  const float* f() const { return floats_.data(); }
  std::int64_t* i() { return ints_.data(); }
  const std::int64_t* i() const { return ints_.data(); }
  std::vector<float>& float_storage() { return floats_; }
  const std::vector<float>& float_storage() const { return floats_; }
  const std::vector<std::int64_t>& int_storage() const { return ints_; }

  // Same data, new shape with the same number of elements (checked).
  void reshape(Shape shape);
  // A copy converted to the other type (int64 → float is exact for |x| < 2^24).
  Tensor as(DType dtype) const;
  // Elements as int64 (for shape-like inputs: axes, pads, shapes); works for either dtype.
  std::vector<std::int64_t> to_ints() const;

 private:
  Shape shape_;
  DType dtype_ = DType::Float32;
  std::int64_t numel_ = 0;
  std::vector<float> floats_;
  std::vector<std::int64_t> ints_;
};

}  // namespace faultline::nn
