#include "sim/vta_rtl.h"

#include <algorithm>
#include <cstring>

#include "models/error.h"

namespace faultline::sim {

VtaRtlGemm::VtaRtlGemm(const std::string& module, const models::vta::VtaConfig& config)
    : batch_(config.batch()), block_(config.block()), transfers_(config.block()) {
  const RtlModuleKind& kind = find_rtl_module(module);
  const RtlModuleInfo& info = kind.info;
  if (info.outputs != block_ || info.inputs != block_)
    throw Error("RTL module " + module + " is " + std::to_string(info.outputs) + " x " + std::to_string(info.inputs) + "; VTA's GEMM core is BLOCK x BLOCK = " +
                std::to_string(block_) + " x " + std::to_string(block_));
  if (info.twin_function == nullptr) throw Error("RTL module " + module + " has no twin, so nothing shows that it computes VTA's exact GEMM");
  // The twin, at the registers' reset values, must be the exact product on probe tiles.
  std::vector<rtl::RegisterValue> registers;
  for (const auto& r : info.registers) registers.push_back({r.name, r.fallback});
  const std::string difference = twin_difference_from_int8(info, registers, /*drop=*/0, "exact product");
  if (!difference.empty())
    throw Error("RTL module " + module + "'s twin is not the exact int8 product VTA's GEMM computes: " + difference);
  unit_ = kind.create_direct("vta_gemm", sc_core::sc_time(1, sc_core::SC_NS));
  unit_->reset();
  for (const auto& r : info.registers) unit_->write_register(r.address, static_cast<std::uint32_t>(r.fallback));
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

}  // namespace faultline::sim
