// RTL matrix-vector units co-simulated through Verilator (rtl/README.md has the port contract).
//
// `RtlMatrixVectorUnit` is the SystemC side every Verilated unit plugs into: it owns the
// contract's signals, generates the clock (only while it has work, so that the simulation can
// run dry between operations), and drives the ready/valid handshakes. The per-module adapter
// (generated from sim/rtl_adapter.cpp.in by cmake/FaultlineRtl.cmake) instantiates the Verilated
// model and maps its data ports; Verilated headers never leave that adapter.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/rtl_twin.h"
#include "sim/systemc.h"

namespace faultline::sim {

struct RtlRegister {
  std::string name;
  int address = 0;
  long long fallback = 0;  // value after reset
  int width = 32;          // bits: values in [0, 2^width)
};

using RtlTwinFunction = void (*)(const rtl::TwinUnit& unit, const std::int8_t* x, std::int32_t* y);

struct RtlModuleInfo {
  std::string name, top, description;
  // Behavioural twin: "exact", "approx" (truncated multipliers, register drop_bits), "none" or the
  // file name of the module's own twin; `twin_function` computes it (nullptr for none).
  std::string twin = "none";
  RtlTwinFunction twin_function = nullptr;
  int outputs = 16, inputs = 16;
  std::vector<RtlRegister> registers;
  std::string parameters;          // Verilog parameters it was verilated with ("N=4 M=4"), for --list
  int max_cycles_per_vector = 64;  // declared worst-case cycles per transfer (time-outs derive from it)
  long long macs_per_cycle = 256;  // multiply-accumulates the unit can do per cycle (utilisation)
};

// The built-in twins by name: exact, approx (reads drop_bits); nullptr for "none".
RtlTwinFunction builtin_rtl_twin(const std::string& name);

// Runs the module's twin (at `registers`) on probe tiles -- random codes, the extremes -128/127,
// all-zero and sparse vectors -- against models::int8_matrix_vector with `drop` truncated bits.
// Returns "" when they agree, else the first difference ("output lane i of a probe vector is X,
// the <model> gives Y"). Throws faultline::Error when the twin itself fails.
std::string twin_difference_from_int8(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, int drop,
                                      const std::string& model);

// acc (rows × outs, row-major) = the module's twin at `registers` applied tile by tile to
// x (rows × ins int8 codes) and the weight codes w (outs × ins, row-major), exactly as the RTL
// level streams a layer: tiles of N outputs × M inputs, lanes past the layer's edge zero, the
// tiles' int32 results added. The functional level of a unit whose twin defines its products.
void twin_tiled_product(const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers, const std::int8_t* w,
                        std::int64_t outs, std::int64_t ins, const std::int8_t* x, std::int64_t rows, std::int32_t* acc);

// The register values a run uses: the reset values, overridden by `values` (by name). Throws
// faultline::Error "<where>: ..." for an unknown register or a value outside [0, 2^width).
std::vector<rtl::RegisterValue> rtl_register_values(const RtlModuleInfo& info, const std::map<std::string, long long>& values,
                                                    const std::string& where);

// A matrix-vector unit driven cycle by cycle through the port contract. Two engines implement
// the ports: ScRtlUnit (the Verilated SystemC model, clocked by SystemC signals; the one that
// records waveforms) and the direct adapter (the same RTL verilated as plain C++, stepped by
// calling its eval(): no SystemC scheduler per clock, several times faster). The handshake logic
// below is shared, so both give the same results in the same cycles (tests/unit/rtl_test.cpp).
class RtlMatrixVectorUnit {
 public:
  RtlMatrixVectorUnit(std::string name, const RtlModuleInfo& info) : name_(std::move(name)), info_(info) {}
  virtual ~RtlMatrixVectorUnit() = default;
  RtlMatrixVectorUnit(const RtlMatrixVectorUnit&) = delete;
  RtlMatrixVectorUnit& operator=(const RtlMatrixVectorUnit&) = delete;
  const std::string& unit_name() const { return name_; }
  const RtlModuleInfo& info() const { return info_; }

  // Everything below advances the unit by whole clock cycles; with ScRtlUnit it must run inside a
  // SystemC thread.

  // rst_n low for `cycles` cycles (synchronous reset); in-flight results are dropped.
  void reset(int cycles = 2);
  // One configuration write (cfg_valid for one cycle).
  void write_register(int address, std::uint32_t value);

  // The input stream's transfers, stored flat (one allocation for a whole stream): transfer k is
  // a weight row or an input vector of `inputs` lanes at lanes(k).
  class TransferList {
   public:
    explicit TransferList(int inputs) : inputs_(static_cast<std::size_t>(inputs)) {}
    // Appends a transfer with zero lanes and returns them to fill in.
    std::int8_t* add(bool weight) {
      weight_.push_back(weight);
      lanes_.resize(lanes_.size() + inputs_, 0);
      return lanes_.data() + lanes_.size() - inputs_;
    }
    void reserve(std::size_t transfers) {
      weight_.reserve(transfers);
      lanes_.reserve(transfers * inputs_);
    }
    std::size_t size() const { return weight_.size(); }
    void clear() {  // keeps the storage for the next stream
      weight_.clear();
      lanes_.clear();
    }
    bool weight(std::size_t k) const { return weight_[k] != 0; }
    const std::int8_t* lanes(std::size_t k) const { return lanes_.data() + k * inputs_; }
    // The first `count` transfers as a list of their own.
    TransferList prefix(std::size_t count) const {
      TransferList out(static_cast<int>(inputs_));
      out.weight_.assign(weight_.begin(), weight_.begin() + static_cast<std::ptrdiff_t>(count));
      out.lanes_.assign(lanes_.begin(), lanes_.begin() + static_cast<std::ptrdiff_t>(count * inputs_));
      return out;
    }

   private:
    std::size_t inputs_;
    std::vector<std::uint8_t> weight_;
    std::vector<std::int8_t> lanes_;
  };
  // Offers `transfers` on the input stream in order and collects results (`outputs` lanes each,
  // appended to `results`) until every transfer was accepted and `expected_results` have arrived
  // (results still in the unit stay there for a later call), or until the unit has had
  // `max_open_cycles` cycles with out_ready high without finishing (cycles held by back-pressure do
  // not count, so a long stall never looks like a dead unit). `hold(cycle)` true keeps out_ready
  // low in that cycle. Returns the number of input transfers accepted.
  std::size_t stream(const TransferList& transfers, std::size_t expected_results, std::vector<std::int32_t>& results,
                     const std::function<bool(std::uint64_t cycle)>& hold, std::uint64_t max_open_cycles);
  // The time-out for `transfers` transfers: the module's declared worst case per transfer
  // (module.txt max_cycles_per_vector) for each, plus a pipeline's worth of slack.
  std::uint64_t open_cycle_bound(std::size_t transfers) const {
    return static_cast<std::uint64_t>(transfers + 16) * static_cast<std::uint64_t>(info_.max_cycles_per_vector) + 1000;
  }

  std::uint64_t cycles() const { return cycles_; }
  // Records every signal of the RTL (ports and internals, Verilator's tracing) from now on, as VCD
  // or FST depending on the factory that built the unit; call after elaboration
  // (sc_start(SC_ZERO_TIME)). Closed when the unit is destroyed. The direct engine has no
  // waveforms (throws faultline::Error).
  virtual void open_rtl_trace(const std::string& path) = 0;
  // Writes out what the waveform holds so far (it stays open: SystemC keeps calling it until the
  // unit is destroyed, which closes it).
  virtual void flush_rtl_trace() = 0;

 protected:
  // The engine's part. Inputs change only while the clock is low; settle() lets the outputs
  // follow them (then they are read), rising_edge() is the clock's rising edge.
  struct Controls {
    bool rst_n = true, in_valid = false, in_weight = false, out_ready = true, cfg_valid = false;
    std::uint32_t cfg_addr = 0, cfg_data = 0;
  };
  virtual void drive(const Controls& controls) = 0;
  virtual void drive_data(const std::int8_t* lanes) = 0;
  virtual void settle() = 0;
  virtual bool in_ready() const = 0;
  virtual bool out_valid() const = 0;
  virtual void sample_result(std::int32_t* lanes) const = 0;
  virtual void rising_edge() = 0;

 private:
  void cycle_edge() {
    rising_edge();
    ++cycles_;
  }

  std::string name_;
  RtlModuleInfo info_;
  Controls controls_;
  std::uint64_t cycles_ = 0;
};

// The SystemC engine: the contract's signals, bound by the generated adapter to the Verilated
// SystemC model; the clock runs only while the unit has work.
class ScRtlUnit : public RtlMatrixVectorUnit, public sc_core::sc_module {
 public:
  ScRtlUnit(const sc_core::sc_module_name& name, const RtlModuleInfo& info, const sc_core::sc_time& period)
      : RtlMatrixVectorUnit(static_cast<const char*>(name), info), sc_core::sc_module(name), half_(period / 2) {}

 protected:
  void drive(const Controls& c) override;
  void settle() override { wait(half_); }
  bool in_ready() const override { return in_ready_.read(); }
  bool out_valid() const override { return out_valid_.read(); }
  void rising_edge() override;

  // The contract's control signals (the adapter binds them to the Verilated model's ports).
  sc_core::sc_signal<bool> clk{"clk"}, rst_n{"rst_n"}, in_valid{"in_valid"}, in_weight{"in_weight"}, out_ready{"out_ready"},
      cfg_valid{"cfg_valid"};
  sc_core::sc_signal<std::uint32_t> cfg_addr{"cfg_addr"}, cfg_data{"cfg_data"};
  sc_core::sc_signal<bool> in_ready_{"in_ready"}, out_valid_{"out_valid"};

 private:
  sc_core::sc_time half_;
};

// Builds a unit named `name`; `period` is the clock of the SystemC engines (the direct engine
// counts cycles only).
using RtlFactory = std::function<std::unique_ptr<RtlMatrixVectorUnit>(const std::string& name, const sc_core::sc_time& period)>;

enum class RtlEngine { Direct, SystemC };
// "direct" or "systemc"; throws faultline::Error naming `option` otherwise.
RtlEngine parse_rtl_engine(const std::string& name, const std::string& option);

struct RtlModuleKind {
  RtlModuleInfo info;
  RtlFactory create;         // SystemC engine, waveforms (open_rtl_trace) as VCD
  RtlFactory create_fst;     // SystemC engine, the module verilated for FST waveforms
  RtlFactory create_direct;  // direct engine (no waveforms)
  // The factory for an engine and waveform format.
  const RtlFactory& factory(RtlEngine engine, bool fst) const {
    return engine == RtlEngine::Direct ? create_direct : fst ? create_fst : create;
  }
};

void register_rtl_module(RtlModuleKind kind);
// The modules registered so far, sorted by name.
std::vector<RtlModuleInfo> rtl_modules();
// Throws faultline::Error naming the known modules when `name` is not one.
const RtlModuleKind& find_rtl_module(const std::string& name);

// Registers every module built into this program (shipped and FAULTLINE_USER_RTL). Defined in
// the generated registry (library faultline_rtl, build/rtl_adapters/rtl_registry.cpp); programs
// call it once at start (the simulation library cannot, as the registry depends on it).
void register_built_rtl();

}  // namespace faultline::sim
