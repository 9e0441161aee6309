// VTA's timing parameters for the cycle level (sim/vta_cycle.h), declared here without SystemC so
// that the hardware kind `vta` (models/vta_substrate.cpp) can declare them as its `timing:` section.
#pragma once

#include "models/param_table.h"

namespace faultline::models::vta {

struct VtaTiming {
  double clock_mhz = 100;          // pkg_config.py: fpga_freq 100 for the Pynq and fsim/tsim targets
  int axi_data_bits = 64;          // shell/Configs.scala: memParams dataBits = 64 (PynqConfig, F1Config)
  int axi_max_burst = 256;         // beats: memParams lenBits = 8 (AXI4's maximum); De10Config limits it to 16
  int dram_latency = 32;           // cycles from a read request to its first beat (or a write's last beat to its response): assumed
  int gemm_pipeline = 8;           // cycles from the last GEMM micro-op's issue to its write-back: TensorGemm's uop read, index,
                                   // scratchpad read, MAC and log2(BLOCK_IN) = 4 pipelined adder stages, accumulator write (approximate)
  int alu_pipeline = 4;            // cycles from the last ALU micro-op's issue to its write-back (TensorAlu: uop read, two ACC reads, ALU, write): assumed
  int alu_cycles_immediate = 1;    // cycles per ALU micro-op with an immediate (one ACC read per micro-op)
  int alu_cycles_vector = 2;       // cycles per ALU micro-op with a vector operand (two ACC reads through one port)
  int inst_queue_entries = 512;    // core/Configs.scala: instQueueEntries = 512 per module queue
  int finish_cycles = 1;           // FINISH: one cycle to raise the done flag (assumed)

  // Declarations with ranges, units and sources (for `--timing` and a unit's `timing:` section).
  static const ParamTable<VtaTiming>& table();
};

}  // namespace faultline::models::vta
