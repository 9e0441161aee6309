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
#include <memory>
#include <string>
#include <vector>

#include "sim/systemc.h"

namespace faultline::sim {

struct RtlRegister {
  std::string name;
  int address = 0;
  long long fallback = 0;  // value after reset
};

struct RtlModuleInfo {
  std::string name, top, description;
  std::string twin = "none";  // behavioural twin: exact, approx (truncated multipliers, register drop_bits) or none
  int outputs = 16, inputs = 16;
  std::vector<RtlRegister> registers;
};

class RtlMatrixVectorUnit : public sc_core::sc_module {
 public:
  RtlMatrixVectorUnit(const sc_core::sc_module_name& name, const RtlModuleInfo& info, const sc_core::sc_time& period);
  const RtlModuleInfo& info() const { return info_; }

  // Everything below runs inside a SystemC thread and advances time by whole clock cycles.

  // rst_n low for `cycles` cycles (synchronous reset); in-flight results are dropped.
  void reset(int cycles = 2);
  // One configuration write (cfg_valid for one cycle).
  void write_register(int address, std::uint32_t value);

  struct Transfer {
    bool weight = false;             // a weight row (true) or an input vector
    std::vector<std::int8_t> lanes;  // `inputs` values
  };
  // Offers `transfers` on the input stream in order and collects results (`outputs` lanes each,
  // appended to `results`) until `expected_results` have arrived or `max_cycles` have passed.
  // `hold(cycle)` true keeps out_ready low in that cycle (back-pressure). Returns the number of
  // input transfers accepted.
  std::size_t stream(const std::vector<Transfer>& transfers, std::size_t expected_results, std::vector<std::int32_t>& results,
                     const std::function<bool(std::uint64_t cycle)>& hold, std::uint64_t max_cycles);

  std::uint64_t cycles() const { return cycles_; }
  // Records every signal of the RTL (ports and internals, Verilator's tracing) from now on, as VCD
  // or FST depending on the factory that built the unit; call after elaboration
  // (sc_start(SC_ZERO_TIME)). Closed when the unit is destroyed.
  virtual void open_rtl_trace(const std::string& path) = 0;
  // Writes out what the waveform holds so far (it stays open: SystemC keeps calling it until the
  // unit is destroyed, which closes it).
  virtual void flush_rtl_trace() = 0;

 protected:
  // The adapter's part: put `lanes` on in_data, read out_data into `lanes`, trace the data ports.
  virtual void drive_data(const std::int8_t* lanes) = 0;
  virtual void sample_result(std::int32_t* lanes) const = 0;

  // The contract's control signals (the adapter binds them to the Verilated model's ports).
  sc_core::sc_signal<bool> clk{"clk"}, rst_n{"rst_n"}, in_valid{"in_valid"}, in_weight{"in_weight"}, out_ready{"out_ready"},
      cfg_valid{"cfg_valid"};
  sc_core::sc_signal<std::uint32_t> cfg_addr{"cfg_addr"}, cfg_data{"cfg_data"};
  sc_core::sc_signal<bool> in_ready{"in_ready"}, out_valid{"out_valid"};

 private:
  // One clock cycle: inputs were set while the clock is low; after half a period the outputs
  // have settled and are sampled, then the rising edge.
  void settle();
  void rising_edge();

  RtlModuleInfo info_;
  sc_core::sc_time half_;
  std::uint64_t cycles_ = 0;
};

using RtlFactory = std::function<std::unique_ptr<RtlMatrixVectorUnit>(const sc_core::sc_module_name&, const sc_core::sc_time& period)>;

struct RtlModuleKind {
  RtlModuleInfo info;
  RtlFactory create;      // waveforms (open_rtl_trace) as VCD
  RtlFactory create_fst;  // the same module verilated for FST waveforms
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
