// `rram_memory`: weights stored as bits in multi-level resistive cells and read back digitally
// (Emonds, Xi, Fröning, arXiv 2401.05820: a noisy operator mimicking the read and write noise of
// a resistive memory unit). A weight is quantized to a `weight_bits` code (offset binary),
// split into base-`levels` digits, one digit per cell; each cell is programmed to the
// conductance of its level (device.h), and the level read back is the nearest one to the
// conductance seen at t_inference. So conductance errors become level errors, and level errors
// become bit errors in the weight. The weight buffer is read once per trial; products are exact.
#include "models/rram_memory.h"

#include <algorithm>
#include <cmath>

#include "models/device.h"
#include "models/error.h"
#include "models/quantize.h"
#include "models/substrate.h"

namespace faultline::models {

RramWeightFormat RramWeightFormat::from(const DeviceConfig& device, int weight_bits) {
  if (device.levels < 2 || (device.levels & (device.levels - 1)) != 0)
    throw Error("rram_memory: 'levels' must be a power of two ≥ 2 (cells store whole bits), got " + std::to_string(device.levels));
  RramWeightFormat f;
  f.weight_bits = weight_bits;
  f.bits_per_cell = 0;
  while ((1 << f.bits_per_cell) < device.levels) ++f.bits_per_cell;
  f.cells_per_weight = (weight_bits + f.bits_per_cell - 1) / f.bits_per_cell;
  return f;
}

RramStoredWeights store_rram_weights(const DeviceConfig& device, const RramWeightFormat& format, const MatrixRM& w,
                                     const LayerInfo& layer, const ProgramContext& context) {
  RramStoredWeights out;
  const std::size_t n = static_cast<std::size_t>(w.size());
  const std::size_t cpw = static_cast<std::size_t>(format.cells_per_weight);
  const std::uint32_t digit_mask = static_cast<std::uint32_t>(device.levels - 1);
  out.scale = offset_binary_codes(w.data(), n, format.weight_bits, out.written);
  std::vector<double> targets(n * cpw);
  const double spacing = device.level_spacing();
  for (std::size_t k = 0; k < n; ++k)
    for (std::size_t c = 0; c < cpw; ++c) {
      const std::uint32_t digit = (out.written[k] >> (c * static_cast<std::size_t>(format.bits_per_cell))) & digit_mask;
      targets[k * cpw + c] = device.g_min + digit * spacing;
    }
  std::vector<std::uint16_t> cell_attempts;
  const std::vector<double> seen =
      program_cells(device, targets, context.seed, context.trial, layer.index, layer.part, &out.stats, &cell_attempts);
  out.read.resize(n);
  out.attempts.assign(n, 0);
  out.attempt_sum.assign(n, 0);
  for (std::size_t k = 0; k < n; ++k) {
    std::uint32_t code = 0;
    for (std::size_t c = 0; c < cpw; ++c) {
      const double level = std::round((seen[k * cpw + c] - device.g_min) / spacing);
      const auto digit = static_cast<std::uint32_t>(std::clamp(level, 0.0, static_cast<double>(device.levels - 1)));
      const std::uint32_t wanted = (out.written[k] >> (c * static_cast<std::size_t>(format.bits_per_cell))) & digit_mask;
      if (digit != wanted) ++out.level_errors;
      code |= digit << (c * static_cast<std::size_t>(format.bits_per_cell));
      out.attempts[k] = std::max(out.attempts[k], cell_attempts[k * cpw + c]);
      out.attempt_sum[k] = static_cast<std::uint16_t>(out.attempt_sum[k] + cell_attempts[k * cpw + c]);
    }
    code &= (1u << format.weight_bits) - 1;  // bits of the top cell beyond the word are not part of it
    if (code != out.written[k]) ++out.weight_errors;
    out.read[k] = code;
  }
  return out;
}

namespace {

class RramMemorySubstrate final : public Substrate {
 public:
  explicit RramMemorySubstrate(const RramMemoryConfig& c) : device_(c.device), format_(RramWeightFormat::from(device_, c.weight_bits)) {
    if (device_.g_max <= device_.g_min) throw Error("rram_memory: 'g_max' must exceed 'g_min'");
  }

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    stored_ = store_rram_weights(device_, format_, w, layer, context);
    weights_.resize(w.rows(), w.cols());
    for (std::size_t k = 0; k < stored_.read.size(); ++k) weights_.data()[k] = stored_.weight(k, format_.weight_bits);
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext&) const override {
    y.noalias() = x * weights_.transpose();
  }

  std::string kind() const override { return "rram_memory"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override {
    stored_.stats.add_to(out);
    out["level_errors"] += static_cast<double>(stored_.level_errors);
    out["weight_errors"] += static_cast<double>(stored_.weight_errors);
  }

 private:
  DeviceConfig device_;
  RramWeightFormat format_;
  MatrixRM weights_;
  RramStoredWeights stored_;
};

SubstrateKind rram_memory_kind() {
  SubstrateKind k = typed_kind("rram_memory",
                               "Weights stored as bits in multi-level resistive cells, read back digitally: level errors become bit errors "
                               "(Emonds, Xi, Froening, arXiv 2401.05820).",
                               RramMemoryConfig::table(), RramMemoryConfig{},
                               [](const RramMemoryConfig& c) { return std::make_unique<RramMemorySubstrate>(c); });
  // Its cycle-level model: sim/rram_memory_system.cpp.
  k.capabilities.cycle_model = true;
  k.timing = RramMemoryTiming::table().specs();
  k.energy = RramMemoryEnergy::table().specs();
  k.summary_counters = {"weight_errors", "stuck_at_gmin", "stuck_at_gmax"};
  return k;
}

}  // namespace

const ParamTable<RramMemoryConfig>& RramMemoryConfig::table() {
  static const ParamTable<RramMemoryConfig> t = [] {
    ParamTable<RramMemoryConfig> p;
    p.nest(&RramMemoryConfig::device, DeviceConfig::table())
        .integer("weight_bits", &RramMemoryConfig::weight_bits, 2, 16, "bits", "width of a stored weight code (symmetric per-layer quantization)");
    return p;
  }();
  return t;
}

const ParamTable<RramMemoryTiming>& RramMemoryTiming::table() {
  static const ParamTable<RramMemoryTiming> t = [] {
    using M = RramMemoryTiming;
    ParamTable<M> p;
    p.number("clock_mhz", &M::clock_mhz, 1, 1e5, "MHz", "clock of memory controller and MAC array (assumed 1 GHz)")
        .integer("banks", &M::banks, 1, 4096, "", "independent memory banks; consecutive lines go to consecutive banks")
        .integer("line_bytes", &M::line_bytes, 1, 1 << 20, "bytes", "bytes one bank reads or writes at once")
        .integer("read_cycles", &M::read_cycles, 1, 1e9, "cycles", "reading one line (RRAM read ~10 ns: assumed typical macro)")
        .integer("write_cycles", &M::write_cycles, 1, 1e9, "cycles", "one write pulse on a line (assumed 50 ns SET/RESET pulse)")
        .integer("verify_cycles", &M::verify_cycles, 0, 1e9, "cycles", "the verify read after each write pulse")
        .integer("mac_rows", &M::mac_rows, 1, 4096, "", "inputs of the digital MAC array (VTA GEMM core: 16)")
        .integer("mac_cols", &M::mac_cols, 1, 4096, "", "outputs of the digital MAC array (VTA GEMM core: 16)")
        .integer("mac_latency_cycles", &M::mac_latency_cycles, 0, 1e6, "cycles", "pipeline fill of the MAC array per weight block (assumed)")
        .integer("weight_buffers", &M::weight_buffers, 1, 64, "", "weight-block buffers between memory and MAC array (2: double buffering, fetch overlaps compute)");
    return p;
  }();
  return t;
}

const ParamTable<RramMemoryEnergy>& RramMemoryEnergy::table() {
  static const ParamTable<RramMemoryEnergy> t = [] {
    using E = RramMemoryEnergy;
    ParamTable<E> p;
    p.number("read_pj_per_byte", &E::read_pj_per_byte, 0, 1e9, "pJ", "reading one byte from the RRAM (assumed; order of on-chip NVM reads)")
        .number("write_pj", &E::write_pj, 0, 1e9, "pJ", "one write pulse on one cell (assumed; RRAM SET/RESET pulses are pJ-scale)")
        .number("verify_pj", &E::verify_pj, 0, 1e9, "pJ", "one verify read of one cell (assumed)")
        .number("mac_pj", &E::mac_pj, 0, 1e9, "pJ", "one digital MAC: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ (Horowitz ISSCC 2014, 45 nm)");
    return p;
  }();
  return t;
}

FAULTLINE_REGISTER_KIND(rram_memory, rram_memory_kind)

}  // namespace faultline::models
