#include "sim/rtl_unit.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "models/error.h"
#include "models/mvm_int8.h"

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
                                        std::uint64_t max_open_cycles) {
  std::size_t next = 0, received = 0;
  std::vector<std::int32_t> lanes(static_cast<std::size_t>(info_.outputs));
  for (std::uint64_t open = 0; open < max_open_cycles && (received < expected_results || next < transfers.size());) {
    const bool offer = next < transfers.size();
    in_valid.write(offer);
    if (offer) {
      in_weight.write(transfers[next].weight);
      drive_data(transfers[next].lanes.data());
    }
    const bool ready_out = !(hold && hold(cycles_));
    out_ready.write(ready_out);
    if (ready_out) ++open;
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
void exact_twin(const rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y) {
  models::int8_matrix_vector(unit.weights, x, y, unit.outputs, unit.inputs, 0);
}
void approx_twin(const rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y) {
  const long long drop = unit.reg("drop_bits");
  // The truncation column is a 4-bit register in the shipped unit; beyond 15 every product is 0.
  models::int8_matrix_vector(unit.weights, x, y, unit.outputs, unit.inputs, static_cast<int>(std::min<long long>(drop, 16)));
}
}  // namespace

RtlTwinFunction builtin_rtl_twin(const std::string& name) {
  if (name == "exact") return &exact_twin;
  if (name == "approx") return &approx_twin;
  return nullptr;
}

std::vector<rtl::RegisterValue> rtl_register_values(const RtlModuleInfo& info, const std::map<std::string, long long>& values,
                                                    const std::string& where) {
  for (const auto& [name, value] : values) {
    const auto it = std::find_if(info.registers.begin(), info.registers.end(), [&](const RtlRegister& r) { return r.name == name; });
    if (it == info.registers.end()) {
      std::string known;
      for (const auto& r : info.registers) known += (known.empty() ? "" : ", ") + r.name;
      throw Error(where + ": RTL module " + info.name + " has no register '" + name + "' (registers: " + (known.empty() ? "none" : known) + ")");
    }
    const long long limit = (1LL << it->width) - 1;
    if (value < 0 || value > limit)
      throw Error(where + ": register " + name + " of RTL module " + info.name + " is " + std::to_string(it->width) + " bits wide: the value must be in [0, " +
                  std::to_string(limit) + "], got " + std::to_string(value));
  }
  std::vector<rtl::RegisterValue> out;
  for (const auto& r : info.registers) {
    const auto it = values.find(r.name);
    out.push_back({r.name, it == values.end() ? r.fallback : it->second});
  }
  return out;
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
