#include "sim/vta_rtl.h"

#include <algorithm>
#include <cstring>

#include "models/error.h"
#include "models/vta_substrate.h"
#include "sim/rtl_level.h"
#include "sim/wrapped_substrate.h"

namespace faultline::sim {

void VtaRtlGemm::check_module(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, int block) {
  if (info.outputs != block || info.inputs != block)
    throw Error("RTL module " + info.name + " is " + std::to_string(info.outputs) + " x " + std::to_string(info.inputs) + "; VTA's GEMM core is BLOCK x BLOCK = " +
                std::to_string(block) + " x " + std::to_string(block));
  if (info.twin_function == nullptr) throw Error("RTL module " + info.name + " has no twin, so nothing shows that it computes VTA's exact GEMM");
  // The twin, at the registers' values, must be the exact product on probe tiles.
  const std::string difference = twin_difference_from_int8(info, registers, /*drop=*/0, "exact product");
  if (!difference.empty()) throw Error("RTL module " + info.name + "'s twin is not the exact int8 product VTA's GEMM computes: " + difference);
}

VtaRtlGemm::VtaRtlGemm(const std::string& module, const models::vta::VtaConfig& config)
    : batch_(config.batch()), block_(config.block()), transfers_(config.block()) {
  const RtlModuleKind& kind = find_rtl_module(module);
  const RtlModuleInfo& info = kind.info;
  std::vector<rtl::RegisterValue> registers;
  for (const auto& r : info.registers) registers.push_back({r.name, r.fallback});
  check_module(info, registers, block_);
  owned_ = kind.create_direct("vta_gemm", sc_core::sc_time(1, sc_core::SC_NS));
  unit_ = owned_.get();
  unit_->reset();
  for (const auto& r : info.registers) unit_->write_register(r.address, static_cast<std::uint32_t>(r.fallback));
}

VtaRtlGemm::VtaRtlGemm(RtlMatrixVectorUnit& unit, const std::vector<rtl::RegisterValue>& registers, const models::vta::VtaConfig& config)
    : unit_(&unit), batch_(config.batch()), block_(config.block()), transfers_(config.block()) {
  check_module(unit.info(), registers, block_);
}

VtaRtlGemm::~VtaRtlGemm() = default;

void VtaRtlGemm::attach(models::vta::VtaMachine& machine) {
  machine.set_gemm_batch([this](const std::vector<models::vta::VtaMachine::GemmWork>& work, std::int32_t* out) { products(work, out); });
}

void VtaRtlGemm::products(const std::vector<models::vta::VtaMachine::GemmWork>& work, std::int32_t* out) {
  const std::size_t tile = static_cast<std::size_t>(block_ * block_);
  transfers_.clear();
  transfers_.reserve(work.size() * static_cast<std::size_t>(batch_) + static_cast<std::size_t>(block_));
  for (const auto& w : work) {
    if (loaded_.size() != tile || std::memcmp(loaded_.data(), w.wgt, tile) != 0) {
      for (int r = 0; r < block_; ++r) std::copy_n(w.wgt + r * block_, block_, transfers_.add(true));
      loaded_.assign(w.wgt, w.wgt + tile);
      ++weight_loads_;
    }
    for (int b = 0; b < batch_; ++b) std::copy_n(w.inp + b * block_, block_, transfers_.add(false));
  }
  const std::size_t vectors = work.size() * static_cast<std::size_t>(batch_);
  results_.clear();
  unit_->stream(transfers_, vectors, results_, {}, unit_->open_cycle_bound(transfers_.size()));
  if (results_.size() != vectors * static_cast<std::size_t>(block_))
    throw Error("RTL module " + unit_->info().name + " returned " + std::to_string(results_.size() / static_cast<std::size_t>(block_)) + " of " +
                std::to_string(vectors) + " GEMM results");
  std::copy(results_.begin(), results_.end(), out);
  products_ += work.size();
}

// The RTL binding of the hardware kind `vta` (`impl: rtl:NAME` on a vta unit, eval --level rtl):
// the functional substrate runs its programs as at the functional level, with every GEMM
// instruction's micro-ops streamed through the unit's Verilated core (in-line, on the evaluating
// thread); the core's cycles are the layer's `cycles`. VTA's GEMM is exact, so a module qualifies
// only when its twin is the exact product; the values then equal the functional level's.
namespace {

class RtlVtaSubstrate final : public WrappedSubstrate {
 public:
  RtlVtaSubstrate(const RtlContext& context, std::unique_ptr<models::Substrate> inner, models::vta::GemmCoreHost& host)
      : WrappedSubstrate(std::move(inner)), context_(context), gemm_(*context.unit, *context.registers, host.machine_config()),
        block_(host.machine_config().block()) {
    host.set_gemm_batch([this](const std::vector<models::vta::VtaMachine::GemmWork>& work, std::int32_t* out) { products(work, out); });
  }

  void program(const models::MatrixRM& w, const models::LayerInfo& layer, const models::ProgramContext& context) override {
    inner().program(w, layer, context);
    layer_ = layer.name + (layer.part ? " (group " + std::to_string(layer.part) + ")" : "");
    clear_own();
  }
  void multiply(const Eigen::Ref<const models::MatrixRM>& x, Eigen::Ref<models::MatrixRM> y, const models::MultiplyContext& context) const override {
    inner().multiply(x, y, context);
    add_own({{"layer_ops", 1}});
  }
  bool convolve(const models::ConvShape& shape, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                const models::MultiplyContext& context) const override {
    if (!inner().convolve(shape, x, images, bias, y, context)) return false;
    add_own({{"layer_ops", 1}});
    return true;
  }

 private:
  void products(const std::vector<models::vta::VtaMachine::GemmWork>& work, std::int32_t* out) {
    std::uint64_t cycles = 0, loads = 0;
    context_.run([&] {
      const std::uint64_t start = gemm_.cycles(), loads_before = gemm_.weight_loads();
      gemm_.products(work, out);
      cycles = gemm_.cycles() - start;
      loads = gemm_.weight_loads() - loads_before;
    });
    if (context_.check) check(work, out);
    const double lanes = static_cast<double>(block_) * static_cast<double>(block_);
    const double vectors = static_cast<double>(work.size()) * static_cast<double>(gemm_.batch());
    add_own({{"cycles", static_cast<double>(cycles)},
             {"time_ns", static_cast<double>(cycles) * 1e3 / context_.clock_mhz},
             {"macs", vectors * lanes},  // the core's MACs, channels padded to BLOCK included
             {"peak_macs", static_cast<double>(cycles) * static_cast<double>(gemm_.unit().info().macs_per_cycle)},
             {"rtl_weight_loads", static_cast<double>(loads)}});
  }

  // --check: the exact product (the twin VTA's core must equal) beside every micro-op.
  void check(const std::vector<models::vta::VtaMachine::GemmWork>& work, const std::int32_t* out) const {
    const int b = gemm_.batch(), n = block_;
    for (std::size_t u = 0; u < work.size(); ++u)
      for (int r = 0; r < b; ++r)
        for (int o = 0; o < n; ++o) {
          std::int32_t sum = 0;
          for (int c = 0; c < n; ++c) sum += static_cast<std::int32_t>(work[u].inp[r * n + c]) * work[u].wgt[o * n + c];
          const std::int32_t got = out[(u * static_cast<std::size_t>(b) + static_cast<std::size_t>(r)) * static_cast<std::size_t>(n) + static_cast<std::size_t>(o)];
          if (got != sum)
            throw Error("--check: unit " + context_.unit_name + " (RTL module " + gemm_.unit().info().name + "), layer " + layer_ + ", GEMM micro-op " +
                        std::to_string(u) + " of a batch, row " + std::to_string(r) + ", output " + std::to_string(o) + ": exact " + std::to_string(sum) +
                        ", RTL " + std::to_string(got));
        }
  }

  RtlContext context_;
  VtaRtlGemm gemm_;
  int block_;
  std::string layer_;
};

int block_of(const models::Params& params) { return models::vta::VtaUnitConfig::table().read(params).machine().block(); }

void check_vta(const models::Params& params, const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers) {
  VtaRtlGemm::check_module(info, registers, block_of(params));
}

std::unique_ptr<models::Substrate> wrap_vta(const RtlContext& context, std::unique_ptr<models::Substrate> functional) {
  auto* host = dynamic_cast<models::vta::GemmCoreHost*>(functional.get());
  if (host == nullptr) throw std::logic_error("the vta RTL binding got a " + functional->kind() + " substrate");
  try {
    return std::make_unique<RtlVtaSubstrate>(context, std::move(functional), *host);
  } catch (const Error& e) {
    throw Error("unit " + context.unit_name + ": " + e.what());
  }
}

// The twin is the exact product (checked), which is what the functional machine computes.
std::unique_ptr<models::Substrate> functional_vta(const models::Params& params, const RtlModuleInfo& info,
                                                  const std::vector<rtl::RegisterValue>& registers, std::unique_ptr<models::Substrate> functional) {
  check_vta(params, info, registers);
  return functional;
}

}  // namespace

FAULTLINE_REGISTER_RTL_BINDING(vta, RtlBinding{&check_vta, &wrap_vta, &functional_vta})

}  // namespace faultline::sim
