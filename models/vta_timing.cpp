#include "models/vta_timing.h"

namespace faultline::models::vta {

const ParamTable<VtaTiming>& VtaTiming::table() {
  static const ParamTable<VtaTiming> t = [] {
    ParamTable<VtaTiming> p;
    p.number("clock_mhz", &VtaTiming::clock_mhz, 1, 10000, "MHz", "clock (tvm-vta config/pkg_config.py: 100 MHz on Pynq)");
    p.integer("axi_data_bits", &VtaTiming::axi_data_bits, 8, 1024, "bits",
              "DRAM data bus width, a power of two (tvm-vta shell/Configs.scala: memParams dataBits 64)");
    p.integer("axi_max_burst", &VtaTiming::axi_max_burst, 1, 256, "beats",
              "longest burst (tvm-vta shell/Configs.scala: lenBits 8, i.e. AXI4's 256; De10Config 16)");
    p.integer("dram_latency", &VtaTiming::dram_latency, 0, 100000, "cycles",
              "from a read request to its first beat, and from a write's last beat to its response (assumed)");
    p.integer("gemm_pipeline", &VtaTiming::gemm_pipeline, 0, 1000, "cycles",
              "GEMM issue to write-back of the last micro-op (tvm-vta TensorGemm: uop read, index, scratchpad read, MAC, "
              "log2(BLOCK_IN) adder stages, write; approximate)");
    p.integer("alu_pipeline", &VtaTiming::alu_pipeline, 0, 1000, "cycles", "ALU issue to write-back of the last micro-op (assumed)");
    p.integer("alu_cycles_immediate", &VtaTiming::alu_cycles_immediate, 1, 100, "cycles",
              "per ALU micro-op with an immediate: one ACC read");
    p.integer("alu_cycles_vector", &VtaTiming::alu_cycles_vector, 1, 100, "cycles",
              "per ALU micro-op with a vector operand: two ACC reads through one port");
    p.integer("inst_queue_entries", &VtaTiming::inst_queue_entries, 1, 1 << 20, "instructions",
              "each module's instruction queue (tvm-vta core/Configs.scala: instQueueEntries 512)");
    p.integer("finish_cycles", &VtaTiming::finish_cycles, 1, 1000, "cycles", "FINISH (assumed)");
    return p;
  }();
  return t;
}

}  // namespace faultline::models::vta
