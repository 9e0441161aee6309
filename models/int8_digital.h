// `int8_digital` (see int8_digital.cpp): exposed so that another implementation of its integer
// product — an RTL matrix-vector unit at the RTL level (sim/rtl_level.h) — can take the place of
// the behavioural one while quantization and rescaling stay exactly the same.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "models/substrate.h"

namespace faultline::models {

// The kind's parameters (declared with their ranges and sources in int8_digital.cpp).
struct Int8DigitalConfig {
  int weight_bits = 8, activation_bits = 8;
  bool per_channel = true;
  double bit_error_rate = 0;
  int approx_drop_bits = 0;
  // The declaration of these fields: hwcfg validation and the RTL binding read through it.
  static const ParamTable<Int8DigitalConfig>& table();
};

class Int8Substrate final : public Substrate {
 public:
  explicit Int8Substrate(const Int8DigitalConfig& c);

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override;
  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override;
  std::string kind() const override { return "int8_digital"; }
  Eigen::Index outputs() const override { return codes_.rows(); }
  Eigen::Index inputs() const override { return codes_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override;

  // acc (rows × outputs, row-major) = x (rows × inputs, int8 codes) · Wᵀ with the stored weight
  // codes; must give the exact integer sums (or the truncated-multiplier sums when
  // approx_drop_bits > 0).
  using IntegerProduct = std::function<void(const std::int8_t* x, std::int64_t rows, std::int32_t* acc)>;
  // Replaces the behavioural integer product (needs weight and activation codes of ≤ 8 bits).
  void set_integer_product(IntegerProduct product);
  // The stored weight codes (outputs × inputs, row-major, after bit flips) as int8; filled by
  // program() when weight_bits ≤ 8, else empty.
  const std::vector<std::int8_t>& weight_codes() const { return codes_int8_; }
  int weight_bits() const { return weight_bits_; }
  int activation_bits() const { return activation_bits_; }
  int approx_drop_bits() const { return drop_; }

 private:
  int weight_bits_, activation_bits_;
  bool per_channel_;
  double ber_;
  int drop_;
  MatrixRM codes_;
  std::vector<std::int8_t> codes_int8_;
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> codes_double_;
  Eigen::VectorXf scales_;
  bool exact_in_float_ = true;
  // approx_drop_bits > 0: the truncated products as one exact GEMM over planes (program()):
  // weights [outputs × planes·inputs] in float (only when the 16-bit form below is not used),
  // each plane's activation transform (bits cleared below approx_planes_[p]; 0: the plain codes),
  // and whether float sums are exact.
  MatrixRM approx_weights_;
  std::vector<int> approx_planes_;
  bool approx_in_float_ = true;
  // The same planes as 16-bit integers, rows padded to int16_gemm_depth (models/int16_gemm.h),
  // when every sum fits int32; empty otherwise (then the float / double GEMM above).
  std::vector<std::int16_t> approx_weights16_;
  std::size_t approx_depth16_ = 0;
  std::uint64_t flipped_ = 0;
  IntegerProduct product_;
  void plan_truncated_products();
};

}  // namespace faultline::models
