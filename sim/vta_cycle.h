// VTA at the cycle-approximate level: the fetch, load, compute and store modules as SystemC
// processes with the instruction queues and the four dependency-token queues between them, and
// the DRAM behind a TLM-2.0 target whose AXI read and write channels move `axi_data_bits` per
// cycle in bursts of at most `axi_max_burst` beats. A double-buffered program therefore overlaps
// loads, GEMMs and stores, and one whose tokens serialize them does not.
//
// Values come from the functional machine (models/vta_isa.h): each module executes an instruction
// on the buffers when it starts it (after popping its tokens) and pushes its tokens when the
// instruction's cycles are over, so a program whose tokens order every conflicting access gives
// the functional level's bits (tested on every test program). The hardware would give a
// timing-dependent result for a program whose tokens do not order a conflicting access (e.g. a load
// overwriting INP a GEMM still reads); fsim and this model then give one of the possible answers.
//
// Timing sources: tvm-vta's Chisel design (hardware/chisel: core/TensorGemm.scala, TensorAlu.scala,
// TensorLoad.scala, Fetch.scala, Configs.scala, shell/Configs.scala), the VTA paper (Moreau et al.,
// arXiv 1807.04188) and config/pkg_config.py; each parameter's declaration names its source or
// says it is assumed.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/param_table.h"
#include "models/vta_isa.h"
#include "models/vta_timing.h"

namespace faultline::sim {

// The cycle level's parameters (models/vta_timing.h: the `timing:` section of a vta unit).
using VtaTiming = models::vta::VtaTiming;

// Cycle counts of one run, beside the functional counters (same values as the functional level).
struct VtaCycleReport {
  models::vta::VtaCounters counters;
  std::uint64_t cycles = 0;  // from the first fetch to the last module's last instruction
  // Per module (load, compute, store): cycles executing instructions, waiting for an instruction
  // (queue empty), waiting for a token.
  std::array<std::uint64_t, 3> busy{}, wait_instruction{}, wait_token{};
  // Token stalls by queue: compute waiting on load (l2c), load on compute (c2l), store on compute
  // (c2s), compute on store (s2c).
  std::uint64_t stall_l2c = 0, stall_c2l = 0, stall_c2s = 0, stall_s2c = 0;
  std::uint64_t fetch_stall_queue_full = 0;  // cycles fetch waited for room in a module's queue
  std::uint64_t dram_read_bytes = 0, dram_write_bytes = 0, dram_read_bursts = 0, dram_write_bursts = 0;
  double time_ns = 0;
};
// The report as a JSON object: the fsim counters by tvm-vta's names, then the cycle counters.
std::string vta_cycle_report_json(const VtaCycleReport& report);

class VtaCycleSimulation {
 public:
  // Elaborates the one SystemC simulation of the process. `vcd` (optional) records each module's
  // state (0 idle, 1 waiting for a token, 2 busy, 3 done), the four token counts and the queue
  // fill levels.
  VtaCycleSimulation(const models::vta::VtaConfig& config, const VtaTiming& timing, const std::string& vcd = "");
  ~VtaCycleSimulation();
  VtaCycleSimulation(const VtaCycleSimulation&) = delete;
  VtaCycleSimulation& operator=(const VtaCycleSimulation&) = delete;

  // The machine whose buffers the modules act on (e.g. to put its GEMM product on RTL).
  models::vta::VtaMachine& machine();
  // A new machine of another configuration (empty buffers), for the runs that follow.
  void configure(const models::vta::VtaConfig& config);
  // The RTL level: the GEMM products come from an RTL core attached to machine() (sim/vta_rtl.h),
  // and a GEMM that computes products keeps compute busy for the core's cycles, read from
  // `core_cycles` (a running count; the difference across the instruction, at one core cycle per
  // VTA cycle) instead of the model's micro-ops + gemm_pipeline. Reset passes keep the model.
  void time_gemm_by(std::function<std::uint64_t()> core_cycles);

  // Runs `program` on `dram` (both as the functional machine takes them). Throws faultline::Error
  // with the functional level's messages (naming the instruction), and for a deadlock names
  // where each module waits; a deadlock the functional level does not have (fetch blocked by a
  // full queue of inst_queue_entries) is named as such.
  VtaCycleReport run(const std::vector<models::vta::Instruction>& program, std::vector<std::uint8_t>& dram);

  // Flushes the waveform; returns its file name ("" without one).
  std::string close_waveform();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::sim
