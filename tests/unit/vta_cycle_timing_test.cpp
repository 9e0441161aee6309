// VTA's cycle level (sim/vta_cycle.h): the cycle counts its timing model defines (GEMM one
// micro-op per cycle plus the pipeline, ALU one or two cycles per micro-op, DMA latency plus one
// beat per cycle), bursts split at the burst limit and at rows, and a double-buffered program
// overlapping load and compute where a serialized one cannot, with the same bits.
//
// SystemC elaborates once per process: every TEST runs as its own process under CTest.
#include <gtest/gtest.h>

#include <cstring>

#include "models/error.h"
#include "models/vta_isa.h"
#include "sim/vta_cycle.h"

using namespace faultline;
using namespace faultline::models::vta;

namespace {

Instruction make(Opcode op, MemId mem = MemId::Uop) {
  Instruction i;
  i.opcode = static_cast<int>(op);
  i.mem_id = static_cast<int>(mem);
  return i;
}
Instruction loop(Opcode op, std::uint32_t uops, std::uint32_t iter_out, std::uint32_t iter_in) {
  Instruction i = make(op);
  i.uop_end = uops;
  i.iter_out = iter_out;
  i.iter_in = iter_in;
  return i;
}

}  // namespace

// Compute's busy cycles are the sum of its instructions' model times: LOAD UOP of one micro-op
// (latency + 1 beat), a GEMM of 2 x 3 x 1 micro-ops (6 + pipeline), ALU of 4 micro-ops with a
// vector operand (4 x 2 + pipeline) and with an immediate (4 x 1 + pipeline), FINISH.
TEST(VtaCycle, ComputeCyclesFollowTheTimingModel) {
  sim::VtaTiming t;
  t.dram_latency = 10;
  sim::VtaCycleSimulation simulation(VtaConfig{}, t);
  std::vector<std::uint8_t> dram(4096, 0);
  Instruction alu_vector = loop(Opcode::Alu, 1, 2, 2);
  Instruction alu_imm = alu_vector;
  alu_imm.use_imm = true;
  alu_imm.imm = 3;
  const std::vector<Instruction> program = {memory_transfer(Opcode::Load, MemId::Uop, 0, 0, 1, 1, 1), loop(Opcode::Gemm, 1, 2, 3), alu_vector, alu_imm,
                                            make(Opcode::Finish)};
  const sim::VtaCycleReport r = simulation.run(program, dram);
  const std::uint64_t expected = (10 + 1) + (6 + static_cast<std::uint64_t>(t.gemm_pipeline)) +
                                 (4 * 2 + static_cast<std::uint64_t>(t.alu_pipeline)) + (4 * 1 + static_cast<std::uint64_t>(t.alu_pipeline)) + 1;
  EXPECT_EQ(r.busy[1], expected);
  EXPECT_EQ(r.busy[0], 0u);
  EXPECT_EQ(r.busy[2], 0u);
  // Fetch: 5 instructions of 16 bytes, 10 beats after the latency, before compute starts.
  EXPECT_EQ(r.cycles, expected + 10 + 10);
  EXPECT_EQ(r.counters.gemm_counter, 6u);
}

// A LOAD WGT of 2 rows of one 256-byte entry, x_stride 3, with bursts of at most 4 beats of 8
// bytes: 8 bursts per row. Fetch reads 2 instructions per burst.
TEST(VtaCycle, BurstsSplitAtTheLimitAndAtEachRow) {
  sim::VtaTiming t;
  t.axi_max_burst = 4;
  sim::VtaCycleSimulation simulation(VtaConfig{}, t);
  std::vector<std::uint8_t> dram(8192, 1);
  const std::vector<Instruction> program = {memory_transfer(Opcode::Load, MemId::Wgt, 0, 0, 2, 1, 3), make(Opcode::Finish)};
  const sim::VtaCycleReport r = simulation.run(program, dram);
  EXPECT_EQ(r.dram_read_bursts, 1u + 2u * 8u);
  EXPECT_EQ(r.dram_read_bytes, 2u * 16u + 2u * 256u);
  EXPECT_EQ(r.counters.wgt_load_nbytes, 512u);
  // The load's 16 bursts move 64 beats back to back after one latency.
  EXPECT_EQ(r.busy[0], static_cast<std::uint64_t>(t.dram_latency) + 64u);
}

// Four tiles of 64 INP entries, each multiplied by one weight tile into its own ACC region and
// stored: with one INP buffer the load of tile i+1 waits until the GEMM of tile i is done; with
// two it runs during that GEMM. Same results, same busy cycles per module, fewer cycles in all.
TEST(VtaCycle, DoubleBufferingOverlapsLoadAndCompute) {
  const VtaConfig c;
  const int tiles = 4, entries = 64, n = 16;
  std::vector<std::uint8_t> image(1 << 20, 0);
  for (std::size_t k = 0; k < image.size(); ++k) image[k] = static_cast<std::uint8_t>((k * 2654435761u) >> 13);
  // DRAM: micro-ops at element 0 (4-byte entries), weights at byte 4096 (256-byte entry 16), INP
  // tiles from byte 8192 (16-byte entry 512), outputs from byte 65536 (16-byte entry 4096).
  // Micro-ops: for each variant (one buffer, two) and tile, ACC entry tile·64 + e from INP entry
  // buffer·64 + e.
  std::vector<std::uint32_t> uops;
  for (int variant = 0; variant < 2; ++variant)
    for (int i = 0; i < tiles; ++i)
      for (int e = 0; e < entries; ++e)
        uops.push_back(encode_uop({static_cast<std::uint32_t>(i * entries + e), static_cast<std::uint32_t>((variant ? i % 2 : 0) * entries + e), 0}, c));
  std::memcpy(image.data(), uops.data(), uops.size() * 4);

  const auto program = [&](bool double_buffered) {
    std::vector<Instruction> p;
    p.push_back(memory_transfer(Opcode::Load, MemId::Uop, 0, 0, 1, static_cast<std::uint32_t>(uops.size()), static_cast<std::uint32_t>(uops.size())));
    p.push_back(memory_transfer(Opcode::Load, MemId::Wgt, 0, 16, 1, 1, 1));
    for (int i = 0; i < tiles; ++i) {
      const int buffer = double_buffered ? i % 2 : 0;
      Instruction in = memory_transfer(Opcode::Load, MemId::Inp, static_cast<std::uint32_t>(buffer * entries),
                                static_cast<std::uint32_t>(512 + i * entries), 1, entries, entries);
      in.pop_next = double_buffered ? i >= 2 : i >= 1;  // wait until compute is done with the buffer
      in.push_next = true;
      p.push_back(in);
      Instruction g = loop(Opcode::Gemm, 0, 1, 1);
      g.reset = true;
      g.uop_bgn = static_cast<std::uint32_t>(((double_buffered ? tiles : 0) + i) * entries);
      g.uop_end = g.uop_bgn + static_cast<std::uint32_t>(entries);
      g.pop_prev = true;
      p.push_back(g);
      Instruction mac = g;
      mac.reset = false;
      mac.pop_prev = false;
      mac.push_prev = true;  // the INP buffer is free again
      mac.push_next = true;  // ACC holds the tile's results
      p.push_back(mac);
      Instruction st = memory_transfer(Opcode::Store, MemId::Out, static_cast<std::uint32_t>(i * entries), static_cast<std::uint32_t>(4096 + i * entries), 1,
                                entries, entries);
      st.pop_prev = true;
      p.push_back(st);
    }
    p.push_back(make(Opcode::Finish));
    return p;
  };
  sim::VtaCycleSimulation simulation(c, sim::VtaTiming{});
  std::vector<std::uint8_t> serial_image = image, double_image = image, functional_image = image;
  const sim::VtaCycleReport serial = simulation.run(program(false), serial_image);
  simulation.configure(c);
  const sim::VtaCycleReport overlapped = simulation.run(program(true), double_image);
  VtaMachine m(c);
  m.run(program(true), functional_image);
  EXPECT_TRUE(serial_image == double_image);
  EXPECT_TRUE(double_image == functional_image);
  EXPECT_NE(std::memcmp(double_image.data() + 65536, image.data() + 65536, static_cast<std::size_t>(tiles * entries * n)), 0);
  EXPECT_EQ(serial.busy, overlapped.busy);
  // Serialized, each load of INP after the first waits for the GEMMs before it; overlapped, three
  // of the four loads run beside GEMMs, which saves most of three tiles' GEMM time.
  const std::uint64_t gemm = 2 * (entries + static_cast<std::uint64_t>(sim::VtaTiming{}.gemm_pipeline));
  EXPECT_LE(overlapped.cycles + 2 * gemm, serial.cycles) << serial.cycles << " vs " << overlapped.cycles;
  EXPECT_GT(serial.stall_c2l, overlapped.stall_c2l);
}

// Fetch blocked by a full module queue while the instruction that would free it is behind it: a
// deadlock of the hardware that the functional machine (which has unbounded queues) does not have.
TEST(VtaCycle, FullInstructionQueueDeadlockIsNamed) {
  sim::VtaTiming t;
  t.inst_queue_entries = 2;
  sim::VtaCycleSimulation simulation(VtaConfig{}, t);
  std::vector<std::uint8_t> dram(4096, 0);
  Instruction waits = memory_transfer(Opcode::Store, MemId::Out, 0, 0, 1, 1, 1);
  waits.pop_prev = true;  // needs compute's token, pushed by the GEMM at the end of the stream
  Instruction pushes = loop(Opcode::Gemm, 1, 1, 1);
  pushes.push_next = true;
  const std::vector<Instruction> program = {memory_transfer(Opcode::Load, MemId::Uop, 0, 0, 1, 1, 1), waits, waits, waits, pushes, pushes, pushes,
                                            make(Opcode::Finish)};
  std::vector<std::uint8_t> functional = dram;
  VtaMachine m(VtaConfig{});
  EXPECT_NO_THROW(m.run(program, functional));
  try {
    simulation.run(program, dram);
    FAIL() << "no deadlock";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("fetch waits for room in the store queue (inst_queue_entries 2)"), std::string::npos) << what;
    EXPECT_NE(what.find("store waits at instruction 1 (STORE OUT) for a token from compute"), std::string::npos) << what;
  }
}
