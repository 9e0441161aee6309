// VTA at the RTL level (sim/vta_rtl.h): a program whose GEMM micro-ops use several weight tiles,
// some in a row (the core keeps them) and some alternating (reloaded), gives the same DRAM image
// on the Verilated mac_array as on the functional machine; a network on VTA at the RTL level.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "hwcfg/hardware_config.h"
#include "models/error.h"
#include "models/vta_isa.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "nn/train.h"
#include "studies/hardware.h"
#include "studies/levels.h"
#include "studies/study.h"
#include "sim/rtl_unit.h"
#include "sim/vta_cycle.h"
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

// The RTL level as `vta run --level rtl` runs it: the cycle level with the core's products and
// cycles. 256 micro-ops on one weight tile stream through mac_array at one per cycle (the tile's
// 16 rows once, then one input row per cycle, plus the pipeline); compute's busy time is the cycle
// level's with the core's cycles in place of the modelled GEMM; the image equals the functional
// machine's.
TEST(VtaRtl, CoreStreamsOneMicroOpPerCycleInsideTheCycleLevel) {
  sim::register_built_rtl();
  const VtaConfig c;
  std::mt19937 rng(9);
  const std::uint32_t uops_n = 256;
  // DRAM: micro-ops at 0, 256 input vectors at byte 4096, one weight tile at byte 12288, outputs at byte 16384.
  std::vector<std::uint8_t> dram(32768, 0);
  std::vector<std::uint32_t> uops;
  for (std::uint32_t k = 0; k < uops_n; ++k) uops.push_back(encode_uop({k, k, 0}, c));
  std::memcpy(dram.data(), uops.data(), uops.size() * 4);
  for (std::size_t k = 4096; k < 4096 + uops_n * 16; ++k) dram[k] = static_cast<std::uint8_t>(rng());
  for (std::size_t k = 12288; k < 12288 + 256; ++k) dram[k] = static_cast<std::uint8_t>(rng());
  const auto transfer = [](Opcode op, MemId mem, std::uint32_t dram_base, std::uint32_t x) { return memory_transfer(op, mem, 0, dram_base, 1, x, x); };
  Instruction inp = transfer(Opcode::Load, MemId::Inp, 4096 / 16, uops_n);
  Instruction wgt = transfer(Opcode::Load, MemId::Wgt, 12288 / 256, 1);
  wgt.push_next = true;
  Instruction reset;
  reset.opcode = static_cast<int>(Opcode::Gemm);
  reset.reset = true;
  reset.uop_end = uops_n;
  reset.iter_out = reset.iter_in = 1;
  reset.pop_prev = true;
  Instruction mac = reset;
  mac.reset = false;
  mac.pop_prev = false;
  mac.push_next = true;
  Instruction store = transfer(Opcode::Store, MemId::Out, 16384 / 16, uops_n);
  store.pop_prev = true;
  Instruction finish;
  finish.opcode = static_cast<int>(Opcode::Finish);
  const std::vector<Instruction> program = {transfer(Opcode::Load, MemId::Uop, 0, uops_n), inp, wgt, reset, mac, store, finish};

  std::vector<std::uint8_t> functional = dram, cycle = dram, rtl = dram;
  VtaMachine(c).run(program, functional);
  sim::VtaTiming timing;
  sim::VtaCycleSimulation simulation(c, timing);
  const sim::VtaCycleReport model = simulation.run(program, cycle);  // the cycle level's own GEMM time
  simulation.configure(c);
  sim::VtaRtlGemm core("mac_array", c);
  core.attach(simulation.machine());
  simulation.time_gemm_by([&core] { return core.cycles(); });
  const std::uint64_t before = core.cycles();
  const sim::VtaCycleReport r = simulation.run(program, rtl);
  const std::uint64_t core_cycles = core.cycles() - before;
  EXPECT_EQ(functional, rtl);
  EXPECT_EQ(functional, cycle);
  EXPECT_EQ(core.weight_loads(), 1u);
  EXPECT_GE(core_cycles, uops_n + 16u);
  EXPECT_LE(core_cycles, uops_n + 16u + 8u) << "more than the weight rows and a short pipeline beyond one micro-op per cycle";
  // Compute's busy time differs from the cycle level's by exactly the core's cycles in place of
  // the model's micro-ops + gemm_pipeline for the accumulating GEMM.
  EXPECT_EQ(r.busy[1] + (uops_n + static_cast<std::uint64_t>(timing.gemm_pipeline)), model.busy[1] + core_cycles);
}

// A network on VTA at `eval --level rtl` (a vta unit with `impl: rtl:mac_array`): every GEMM of
// every layer's programs on the Verilated core, with --check comparing each micro-op with the
// exact product; accuracy, per-layer errors and the network's outputs bit-identical to the
// functional level; the core's cycles per layer; a module that is not BLOCK x BLOCK is refused.
TEST(VtaRtl, NetworkOnTheRtlCoreEqualsTheFunctionalLevel) {
  sim::register_built_rtl();
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 5);
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5");
  studies::StudyOptions so;
  so.eval.limit = 12;
  so.eval.threads = 1;
  so.seed = 4;
  nn::Tensor batch(nn::Shape{3, 1, 28, 28});
  std::memcpy(batch.f(), test.images.data(), sizeof(float) * static_cast<std::size_t>(batch.numel()));
  const auto config = [] { return hwcfg::load_hardware_config("vta", {"units.vta.impl=rtl:mac_array"}); };

  // BLOCK 8 with the 16 x 16 core: refused before any work, naming the description and unit (checked
  // before SystemC runs: under AddressSanitizer an exception after it is misreported).
  try {
    studies::check_rtl_units(hwcfg::load_hardware_config("vta", {"units.vta.impl=rtl:mac_array", "units.vta.log_block=3", "units.vta.log_inp_buff_size=14", "units.vta.log_acc_buff_size=15", "units.vta.log_wgt_buff_size=15"}));
    FAIL() << "a 16 x 16 core was accepted for BLOCK 8";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BLOCK x BLOCK = 8 x 8"), std::string::npos) << e.what();
  }

  const hwcfg::HardwareConfig functional = config();
  const studies::StudyResult f = studies::run_study(*graph, functional, test, so);
  studies::program(functional, *graph, {4, 0});
  const nn::Tensor f_out = graph->run({batch})[0];

  std::vector<hwcfg::HardwareConfig> rtl = {config()};
  auto simulation = studies::attach_rtl_level(rtl, *graph, "", false, /*check=*/true);
  const studies::StudyResult r = studies::run_study(*graph, rtl[0], test, so);
  EXPECT_EQ(r.accuracies, f.accuracies);
  ASSERT_EQ(r.layers.size(), f.layers.size());
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    EXPECT_EQ(r.layers[l].rms_error, f.layers[l].rms_error) << r.layers[l].name;
    EXPECT_EQ(r.layers[l].counters.at("gemm_counter"), f.layers[l].counters.at("gemm_counter")) << r.layers[l].name;
    // One micro-op per cycle at best: the core's cycles cover its micro-ops.
    EXPECT_GE(r.layers[l].counters.at("cycles"), r.layers[l].counters.at("gemm_counter")) << r.layers[l].name;
  }
  studies::program(rtl[0], *graph, {4, 0});
  const nn::Tensor out = graph->run({batch})[0];
  EXPECT_EQ(std::memcmp(out.f(), f_out.f(), sizeof(float) * static_cast<std::size_t>(out.numel())), 0);
}
