// VTA at the RTL level (sim/vta_rtl.h): a program whose GEMM micro-ops use several weight tiles,
// some in a row (the core keeps them) and some alternating (reloaded), gives the same DRAM image
// on the Verilated mac_array as on the functional machine.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "models/error.h"
#include "models/vta_isa.h"
#include "sim/rtl_unit.h"
#include "sim/vta_rtl.h"

using namespace faultline;
using namespace faultline::models::vta;

TEST(VtaRtl, GemmOnTheRtlCoreEqualsTheFunctionalMachine) {
  sim::register_built_rtl();
  const VtaConfig c;
  std::mt19937 rng(5);
  // DRAM: 8 micro-ops at element 0 (4 bytes), 6 input vectors at byte 1024, 4 weight tiles at
  // byte 2048, 6 output vectors at byte 4096.
  std::vector<std::uint8_t> dram(8192, 0);
  std::vector<std::uint32_t> uops;
  for (std::uint32_t k = 0; k < 8; ++k) uops.push_back(encode_uop({k % 6, (k * 5) % 6, k < 4 ? 1u : k % 4}, c));  // tile 1 four times in a row, then alternating
  std::memcpy(dram.data(), uops.data(), uops.size() * 4);
  for (std::size_t k = 1024; k < 1024 + 6 * 16; ++k) dram[k] = static_cast<std::uint8_t>(rng());
  for (std::size_t k = 2048; k < 2048 + 4 * 256; ++k) dram[k] = static_cast<std::uint8_t>(rng());
  const auto insn = [](Opcode op) {
    Instruction i;
    i.opcode = static_cast<int>(op);
    return i;
  };
  std::vector<Instruction> program;
  Instruction l = insn(Opcode::Load);
  l.mem_id = static_cast<int>(MemId::Uop), l.y_size = 1, l.x_size = 8, l.x_stride = 8;
  program.push_back(l);
  l.mem_id = static_cast<int>(MemId::Inp), l.dram_base = 1024 / 16, l.x_size = 6, l.x_stride = 6;
  program.push_back(l);
  l.mem_id = static_cast<int>(MemId::Wgt), l.dram_base = 2048 / 256, l.x_size = 4, l.x_stride = 4;
  program.push_back(l);
  Instruction g = insn(Opcode::Gemm);
  g.reset = true, g.uop_bgn = 0, g.uop_end = 8, g.iter_out = 1, g.iter_in = 1;
  program.push_back(g);
  g.reset = false, g.iter_in = 3;  // each micro-op three times: the same tile stays loaded
  program.push_back(g);
  Instruction s = insn(Opcode::Store);
  s.mem_id = static_cast<int>(MemId::Out), s.dram_base = 4096 / 16, s.y_size = 1, s.x_size = 6, s.x_stride = 6;
  program.push_back(s);
  program.push_back(insn(Opcode::Finish));

  std::vector<std::uint8_t> functional = dram, rtl = dram;
  VtaMachine fm(c);
  const VtaCounters fk = fm.run(program, functional);
  VtaMachine rm(c);
  sim::VtaRtlGemm core("mac_array", c);
  core.attach(rm);
  const VtaCounters rk = rm.run(program, rtl);
  EXPECT_EQ(functional, rtl);
  EXPECT_EQ(fk.gemm_counter, rk.gemm_counter);
  EXPECT_EQ(core.products(), 24u);
  // Per inner iteration: tile 1 for micro-ops 0-3 (loaded once, kept for four products), then
  // tiles 0, 1, 2, 3 (each loaded): 5 loads per iteration, 15 for 24 products.
  EXPECT_EQ(core.weight_loads(), 15u);
  EXPECT_GT(core.cycles(), 24u);
  // The output is not trivially zero.
  EXPECT_NE(std::count(functional.begin() + 4096, functional.begin() + 4096 + 96, 0), 96);
  EXPECT_THROW(sim::VtaRtlGemm("approx_mac_array", c), Error);  // its twin is not the exact product
}
