#include "sim/rtl_unit.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "models/error.h"
#include "models/mvm_int8.h"

namespace faultline::sim {

void ScRtlUnit::drive(const Controls& c) {
  rst_n.write(c.rst_n);
  in_valid.write(c.in_valid);
  in_weight.write(c.in_weight);
  out_ready.write(c.out_ready);
  cfg_valid.write(c.cfg_valid);
  cfg_addr.write(c.cfg_addr);
  cfg_data.write(c.cfg_data);
}

void ScRtlUnit::rising_edge() {
  clk.write(true);
  wait(half_);
  clk.write(false);
}

RtlEngine parse_rtl_engine(const std::string& name, const std::string& option) {
  if (name == "direct") return RtlEngine::Direct;
  if (name == "systemc") return RtlEngine::SystemC;
  throw Error(option + ": must be direct or systemc, got '" + name + "'");
}

void RtlMatrixVectorUnit::reset(int n) {
  controls_ = Controls{};
  controls_.rst_n = false;
  drive(controls_);
  for (int k = 0; k < n; ++k) {
    settle();
    cycle_edge();
  }
  controls_.rst_n = true;
  drive(controls_);
}

void RtlMatrixVectorUnit::write_register(int address, std::uint32_t value) {
  controls_.in_valid = false;
  controls_.cfg_valid = true;
  controls_.cfg_addr = static_cast<std::uint32_t>(address);
  controls_.cfg_data = value;
  drive(controls_);
  settle();
  cycle_edge();
  controls_.cfg_valid = false;
  drive(controls_);
}

std::size_t RtlMatrixVectorUnit::stream(const TransferList& transfers, std::size_t expected_results,
                                        std::vector<std::int32_t>& results, const std::function<bool(std::uint64_t)>& hold,
                                        std::uint64_t max_open_cycles) {
  std::size_t next = 0, received = 0;
  std::vector<std::int32_t> lanes(static_cast<std::size_t>(info_.outputs));
  for (std::uint64_t open = 0; open < max_open_cycles && (received < expected_results || next < transfers.size());) {
    const bool offer = next < transfers.size();
    controls_.in_valid = offer;
    if (offer) {
      controls_.in_weight = transfers.weight(next);
      drive_data(transfers.lanes(next));
    }
    const bool ready_out = !(hold && hold(cycles_));
    controls_.out_ready = ready_out;
    drive(controls_);
    if (ready_out) ++open;
    settle();
    // A transfer happens at the rising edge where valid and ready are both high.
    const bool in_fire = offer && in_ready();
    if (out_valid() && ready_out) {
      results.resize(results.size() + lanes.size());
      sample_result(results.data() + results.size() - lanes.size());
      ++received;
    }
    cycle_edge();
    if (in_fire) ++next;
  }
  controls_.in_valid = false;
  drive(controls_);
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

std::string twin_difference_from_int8(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, int drop,
                                      const std::string& model) {
  const int n = info.outputs, m = info.inputs;
  std::vector<std::int8_t> w(static_cast<std::size_t>(n * m)), x(static_cast<std::size_t>(m));
  std::vector<std::int32_t> expected(static_cast<std::size_t>(n)), got(static_cast<std::size_t>(n));
  std::uint64_t state = 0x9E3779B97F4A7C15ull;  // a fixed probe sequence (splitmix64 steps)
  const auto next = [&state] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int pattern = 0; pattern < 24; ++pattern) {
    for (auto& v : w) v = pattern % 4 == 1 ? (next() & 1 ? 127 : -128) : static_cast<std::int8_t>(next() & 0xFF);
    for (auto& v : x) {
      const std::uint64_t r = next();
      v = pattern % 4 == 1 ? (r & 1 ? 127 : -128) : pattern % 4 == 2 ? 0 : pattern % 4 == 3 && (r & 3) ? 0 : static_cast<std::int8_t>(r >> 8);
    }
    models::int8_matrix_vector(w.data(), x.data(), expected.data(), n, m, drop);
    try {
      info.twin_function(rtl::TwinUnit{n, m, w.data(), &registers}, x.data(), got.data());
    } catch (const std::exception& e) {
      throw Error("RTL module " + info.name + "'s twin failed: " + e.what());
    }
    for (int i = 0; i < n; ++i)
      if (got[static_cast<std::size_t>(i)] != expected[static_cast<std::size_t>(i)])
        return "output lane " + std::to_string(i) + " of a probe vector is " + std::to_string(got[static_cast<std::size_t>(i)]) +
               ", the " + model + " gives " + std::to_string(expected[static_cast<std::size_t>(i)]);
  }
  return "";
}

void twin_tiled_product(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, const std::int8_t* w,
                        std::int64_t outs, std::int64_t ins, const std::int8_t* x, std::int64_t rows, std::int32_t* acc) {
  const int n = info.outputs, m = info.inputs;
  std::fill(acc, acc + rows * outs, 0);
  std::vector<std::int8_t> tile(static_cast<std::size_t>(n * m)), lanes(static_cast<std::size_t>(m));
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  const rtl::TwinUnit unit{n, m, tile.data(), &registers};
  for (std::int64_t o0 = 0; o0 < outs; o0 += n)
    for (std::int64_t i0 = 0; i0 < ins; i0 += m) {
      const int height = static_cast<int>(std::min<std::int64_t>(n, outs - o0));
      const int width = static_cast<int>(std::min<std::int64_t>(m, ins - i0));
      std::fill(tile.begin(), tile.end(), std::int8_t{0});
      for (int i = 0; i < height; ++i) std::copy_n(w + (o0 + i) * ins + i0, width, tile.begin() + i * m);
      std::fill(lanes.begin() + width, lanes.end(), std::int8_t{0});
      for (std::int64_t r = 0; r < rows; ++r) {
        std::copy_n(x + r * ins + i0, width, lanes.begin());
        info.twin_function(unit, lanes.data(), y.data());
        for (int i = 0; i < height; ++i) acc[r * outs + o0 + i] += y[static_cast<std::size_t>(i)];
      }
    }
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
