// `rram_memory`: weights stored as bits in multi-level resistive cells and read back digitally
// (Emonds, Xi, Fröning, arXiv 2401.05820: a noisy operator mimicking the read and write noise of
// a resistive memory unit). A weight is quantized to a `weight_bits` code (offset binary),
// split into base-`levels` digits, one digit per cell; each cell is programmed to the
// conductance of its level (device.h), and the level read back is the nearest one to the
// conductance seen at t_inference. So conductance errors become level errors, and level errors
// become bit errors in the weight. The weight buffer is read once per trial; products are exact.
#include <cmath>

#include "models/device.h"
#include "models/error.h"
#include "models/quantize.h"
#include "models/substrate.h"

namespace faultline::models {
namespace {

class RramMemorySubstrate final : public Substrate {
 public:
  explicit RramMemorySubstrate(const Params& p) : device_(DeviceConfig::from(p)), weight_bits_(p.integer("weight_bits")) {
    if (device_.levels < 2 || (device_.levels & (device_.levels - 1)) != 0)
      throw Error("rram_memory: 'levels' must be a power of two ≥ 2 (cells store whole bits), got " + std::to_string(device_.levels));
    if (device_.g_max <= device_.g_min) throw Error("rram_memory: 'g_max' must exceed 'g_min'");
    bits_per_cell_ = 0;
    while ((1 << bits_per_cell_) < device_.levels) ++bits_per_cell_;
    cells_per_weight_ = (weight_bits_ + bits_per_cell_ - 1) / bits_per_cell_;
  }

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    const std::size_t n = static_cast<std::size_t>(w.size());
    std::vector<std::uint32_t> codes;
    const float scale = offset_binary_codes(w.data(), n, weight_bits_, codes);
    std::vector<double> targets(n * static_cast<std::size_t>(cells_per_weight_));
    const double spacing = device_.level_spacing();
    for (std::size_t k = 0; k < n; ++k) {
      for (int c = 0; c < cells_per_weight_; ++c) {
        const std::uint32_t digit = (codes[k] >> (c * bits_per_cell_)) & static_cast<std::uint32_t>(device_.levels - 1);
        targets[k * cells_per_weight_ + c] = device_.g_min + digit * spacing;
      }
    }
    stats_ = {};
    const std::vector<double> seen = program_cells(device_, targets, context.seed, context.trial, layer.index, layer.part, &stats_);
    weights_.resize(w.rows(), w.cols());
    level_errors_ = weight_errors_ = 0;
    for (std::size_t k = 0; k < n; ++k) {
      std::uint32_t code = 0;
      for (int c = 0; c < cells_per_weight_; ++c) {
        const double level = std::round((seen[k * cells_per_weight_ + c] - device_.g_min) / spacing);
        const auto digit = static_cast<std::uint32_t>(std::clamp(level, 0.0, static_cast<double>(device_.levels - 1)));
        const std::uint32_t wanted = (codes[k] >> (c * bits_per_cell_)) & static_cast<std::uint32_t>(device_.levels - 1);
        if (digit != wanted) ++level_errors_;
        code |= digit << (c * bits_per_cell_);
      }
      code &= (1u << weight_bits_) - 1;  // bits of the top cell beyond the word are not part of it
      if (code != codes[k]) ++weight_errors_;
      weights_.data()[k] = static_cast<float>(static_cast<long>(code) - (1L << (weight_bits_ - 1))) * scale;
    }
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext&) const override {
    y.noalias() = x * weights_.transpose();
  }

  std::string kind() const override { return "rram_memory"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override {
    stats_.add_to(out);
    out["level_errors"] += static_cast<double>(level_errors_);
    out["weight_errors"] += static_cast<double>(weight_errors_);
  }

 private:
  DeviceConfig device_;
  int weight_bits_;
  int bits_per_cell_ = 1, cells_per_weight_ = 8;
  MatrixRM weights_;
  CellArrayStats stats_;
  std::uint64_t level_errors_ = 0, weight_errors_ = 0;
};

}  // namespace

SubstrateKind rram_memory_kind() {
  using T = ParamSpec::Type;
  std::vector<ParamSpec> params = device_param_specs("rram", 50.0, 225.0, 4);
  params.push_back({"weight_bits", T::Integer, 8, 2, 16, {}, "bits", "width of a stored weight code (symmetric per-layer quantization)"});
  return {"rram_memory",
          "Weights stored as bits in multi-level resistive cells, read back digitally: level errors become bit errors "
          "(Emonds, Xi, Froening, arXiv 2401.05820).",
          params, [](const Params& p) { return std::make_unique<RramMemorySubstrate>(p); }};
}

}  // namespace faultline::models
