// VTA at the RTL level: the compute module's GEMM products on a Verilated GEMM core, an RTL
// matrix-vector unit of the plug-in contract (rtl/README.md) with BLOCK outputs and BLOCK inputs
// (the shipped mac_array is VTA's 16 × 16 core). Each micro-op's weight tile is loaded as BLOCK
// weight rows -- only when it differs from the tile the core holds (weight-stationary) -- and its
// BATCH input rows are streamed; the results are added to ACC by the machine. Values equal the
// functional level's whenever the core equals its twin (tests/unit/vta_rtl_test.cpp).
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
  ~VtaRtlGemm();
  void attach(models::vta::VtaMachine& machine);

  std::uint64_t cycles() const { return unit_->cycles(); }
  std::uint64_t weight_loads() const { return weight_loads_; }
  std::uint64_t products() const { return products_; }

 private:
  void product(const std::int8_t* inp, const std::int8_t* wgt, std::int32_t* out);

  std::unique_ptr<RtlMatrixVectorUnit> unit_;
  int batch_, block_;
  std::vector<std::int8_t> loaded_;  // the weight tile in the core
  std::uint64_t weight_loads_ = 0, products_ = 0;
  std::vector<std::int32_t> results_;
};

}  // namespace faultline::sim
