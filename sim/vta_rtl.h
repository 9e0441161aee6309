// VTA at the RTL level: the compute module's GEMM products on a Verilated GEMM core, an RTL
// matrix-vector unit of the plug-in contract (rtl/README.md) with BLOCK outputs and BLOCK inputs
// (the shipped mac_array is VTA's 16 × 16 core). A GEMM instruction's micro-ops stream through
// the core in issue order, one stream per chunk of them: a micro-op whose weight tile differs from
// the one the core holds is preceded by the BLOCK weight rows of its tile (weight-stationary), and
// its BATCH input rows follow; the core takes one transfer per cycle when it is ready, so a run of
// micro-ops on one weight tile takes about one cycle per input row. The results are added to ACC
// by the machine. Values equal the functional level's whenever the core equals its twin
// (tests/unit/vta_rtl_test.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "models/vta_isa.h"
#include "sim/rtl_unit.h"

namespace faultline::sim {

class VtaRtlGemm {
 public:
  // Builds the module's direct-engine unit (no SystemC scheduler: the machine calls it in-line).
  // Throws faultline::Error when the module's lanes are not BLOCK × BLOCK or its twin is not the
  // exact int8 product (VTA's GEMM is exact).
  VtaRtlGemm(const std::string& module, const models::vta::VtaConfig& config);
  // On a unit elaborated elsewhere (the RTL level's), with its register values; not owned.
  VtaRtlGemm(RtlMatrixVectorUnit& unit, const std::vector<rtl::RegisterValue>& registers, const models::vta::VtaConfig& config);
  // Throws faultline::Error (no location) when `info` at `registers` cannot be VTA's GEMM core of
  // BLOCK × BLOCK: other lanes, no twin, or a twin that is not the exact int8 product.
  static void check_module(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, int block);
  // The products of `work` (VtaMachine::GemmBatch) on the core.
  void products(const std::vector<models::vta::VtaMachine::GemmWork>& work, std::int32_t* out);
  ~VtaRtlGemm();
  void attach(models::vta::VtaMachine& machine);

  std::uint64_t cycles() const { return unit_->cycles(); }
  RtlMatrixVectorUnit& unit() const { return *unit_; }
  std::uint64_t weight_loads() const { return weight_loads_; }
  std::uint64_t products() const { return products_; }
  int batch() const { return batch_; }

 private:
  std::unique_ptr<RtlMatrixVectorUnit> owned_;
  RtlMatrixVectorUnit* unit_ = nullptr;
  int batch_, block_;
  std::vector<std::int8_t> loaded_;  // the weight tile in the core
  RtlMatrixVectorUnit::TransferList transfers_;
  std::uint64_t weight_loads_ = 0, products_ = 0;
  std::vector<std::int32_t> results_;
};

}  // namespace faultline::sim
