#include "sim/vta_rtl.h"

#include <algorithm>
#include <cstring>

#include "models/error.h"

namespace faultline::sim {

VtaRtlGemm::VtaRtlGemm(const std::string& module, const models::vta::VtaConfig& config)
    : batch_(config.batch()), block_(config.block()) {
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
  machine.set_gemm_product([this](const std::int8_t* inp, const std::int8_t* wgt, std::int32_t* out) { product(inp, wgt, out); });
}

void VtaRtlGemm::product(const std::int8_t* inp, const std::int8_t* wgt, std::int32_t* out) {
  const std::size_t tile = static_cast<std::size_t>(block_ * block_);
  RtlMatrixVectorUnit::TransferList transfers(block_);
  transfers.reserve(static_cast<std::size_t>(block_ + batch_));
  const bool reload = loaded_.size() != tile || std::memcmp(loaded_.data(), wgt, tile) != 0;
  if (reload) {
    for (int r = 0; r < block_; ++r) std::copy_n(wgt + r * block_, block_, transfers.add(true));
    loaded_.assign(wgt, wgt + tile);
    ++weight_loads_;
  }
  for (int b = 0; b < batch_; ++b) std::copy_n(inp + b * block_, block_, transfers.add(false));
  results_.clear();
  unit_->stream(transfers, static_cast<std::size_t>(batch_), results_, {}, unit_->open_cycle_bound(transfers.size()));
  if (results_.size() != static_cast<std::size_t>(batch_ * block_))
    throw Error("RTL module " + unit_->info().name + " returned " + std::to_string(results_.size() / static_cast<std::size_t>(block_)) + " of " +
                std::to_string(batch_) + " GEMM results");
  std::copy(results_.begin(), results_.end(), out);
  ++products_;
}

}  // namespace faultline::sim
