#include "sim/rtl_unit.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "models/error.h"

namespace faultline::sim {

RtlMatrixVectorUnit::RtlMatrixVectorUnit(const sc_core::sc_module_name& name, const RtlModuleInfo& info, const sc_core::sc_time& period)
    : sc_module(name), info_(info), half_(period / 2) {}

void RtlMatrixVectorUnit::settle() { wait(half_); }

void RtlMatrixVectorUnit::rising_edge() {
  clk.write(true);
  wait(half_);
  clk.write(false);
  ++cycles_;
}

void RtlMatrixVectorUnit::reset(int n) {
  rst_n.write(false);
  in_valid.write(false);
  cfg_valid.write(false);
  out_ready.write(true);
  for (int k = 0; k < n; ++k) {
    settle();
    rising_edge();
  }
  rst_n.write(true);
}

void RtlMatrixVectorUnit::write_register(int address, std::uint32_t value) {
  in_valid.write(false);
  cfg_valid.write(true);
  cfg_addr.write(static_cast<std::uint32_t>(address));
  cfg_data.write(value);
  settle();
  rising_edge();
  cfg_valid.write(false);
}

std::size_t RtlMatrixVectorUnit::stream(const std::vector<Transfer>& transfers, std::size_t expected_results,
                                        std::vector<std::int32_t>& results, const std::function<bool(std::uint64_t)>& hold,
                                        std::uint64_t max_cycles) {
  std::size_t next = 0, received = 0;
  std::vector<std::int32_t> lanes(static_cast<std::size_t>(info_.outputs));
  for (std::uint64_t c = 0; c < max_cycles && received < expected_results; ++c) {
    const bool offer = next < transfers.size();
    in_valid.write(offer);
    if (offer) {
      in_weight.write(transfers[next].weight);
      drive_data(transfers[next].lanes.data());
    }
    const bool ready_out = !(hold && hold(cycles_));
    out_ready.write(ready_out);
    settle();
    // A transfer happens at the rising edge where valid and ready are both high.
    const bool in_fire = offer && in_ready.read();
    if (out_valid.read() && ready_out) {
      sample_result(lanes.data());
      results.insert(results.end(), lanes.begin(), lanes.end());
      ++received;
    }
    rising_edge();
    if (in_fire) ++next;
  }
  in_valid.write(false);
  return next;
}


namespace {
struct RtlRegistry {
  std::mutex mutex;
  std::map<std::string, RtlModuleKind> kinds;
};
RtlRegistry& rtl_registry() {
  static RtlRegistry r;
  return r;
}
}  // namespace

void register_rtl_module(RtlModuleKind kind) {
  RtlRegistry& r = rtl_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.kinds[kind.info.name] = std::move(kind);
}

std::vector<RtlModuleInfo> rtl_modules() {
  RtlRegistry& r = rtl_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<RtlModuleInfo> out;
  for (const auto& [name, kind] : r.kinds) out.push_back(kind.info);
  return out;
}

const RtlModuleKind& find_rtl_module(const std::string& name) {
  RtlRegistry& r = rtl_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.kinds.find(name);
  if (it == r.kinds.end()) {
    std::string known;
    for (const auto& [n, k] : r.kinds) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown RTL module '" + name + "' (built: " + (known.empty() ? "none" : known) + ")");
  }
  return it->second;
}

}  // namespace faultline::sim
