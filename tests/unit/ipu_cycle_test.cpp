// The ipu kind's cycle level (sim/ipu_cycle.cpp): bulk-synchronous supersteps whose cycles are
// worked out by hand here for a layer the planner must split over its reduction dimension, the
// same cycles whatever the number of tiles per SystemC process, reads batched across calls, the
// values bit-identical to the functional level, and the waveform.
//
// SystemC elaborates once per process: every TEST runs as its own process under CTest.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "models/ipu_substrate.h"
#include "models/substrate.h"
#include "sim/cycle_level.h"

using namespace faultline;

namespace {

// 2 tiles of 280 bytes, 2 workers, 4 fp16 MACs per cycle, 2 bytes per cycle of exchange after a
// latency of 10, syncs of 5, batch 2. A 64-input, 2-output layer fits only split over its inputs
// (1 x 1 x 2): each tile holds 32 x 2 weights (128 B), 2 x 32 inputs (128 B), 2 x 2 fp32 partials
// (16 B) = 272 B; unsplit it needs 528 B, split over the outputs 392 B.
sim::UnitSpec small_ipu(const std::string& name, int tiles_per_process) {
  const models::SubstrateKind* k = models::find_substrate_kind("ipu");
  sim::UnitSpec u;
  u.name = name;
  u.kind = "ipu";
  u.params = models::default_params(k->params);
  u.timing = models::default_params(k->timing);
  u.energy = models::default_params(k->energy);
  for (const auto& [key, v] : std::map<std::string, double>{{"tiles", 2},
                                                            {"tile_memory_kib", 280.0 / 1024},
                                                            {"workers", 2},
                                                            {"amp_macs_fp16", 4},
                                                            {"exchange_bytes_per_cycle", 2},
                                                            {"exchange_latency", 10},
                                                            {"sync_cycles", 5},
                                                            {"tile_overhead_kib", 0},
                                                            {"batch", 2}})
    u.params.set_number(key, v);
  u.timing.set_number("tiles_per_process", tiles_per_process);
  u.block_shapes = {{64, 2}};
  return u;
}

models::MatrixRM random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::srand(seed);
  return models::MatrixRM::Random(rows, cols);
}

std::map<std::string, double> counters(const models::Substrate& s) {
  std::map<std::string, double> c;
  s.add_counters(c);
  return c;
}

}  // namespace

// Per run (batch 2):
//   superstep 1: sync 5; exchange 10 + 2 rows x 32 inputs x 2 B / 2 B/cycle = 74;
//                compute: 2 x 2 outputs over 2 workers = 2 each, 2 x 32 MACs per worker at 4/2 per cycle = 32
//   superstep 2: sync 5; exchange 10 + one 2 x 2 fp32 partial slice (16 B) / 2 = 18; compute 2 additions per worker = 2
//   = 136 cycles. Five samples read as 3 + 2 make ceil(5 / 2) = 3 runs: 408 cycles.
TEST(IpuCycle, SuperstepsFollowTheFormulaByHand) {
  sim::CycleSimulation simulation({small_ipu("one_tile_per_process", 1), small_ipu("two_tiles_per_process", 2)});
  const models::MatrixRM w = random_matrix(2, 64, 1), x = random_matrix(5, 64, 2);
  const models::LayerInfo layer{"fc", "Gemm", 0, 0};
  for (std::size_t unit = 0; unit < 2; ++unit) {
    SCOPED_TRACE(simulation.unit(unit).name);
    auto functional = models::create_substrate("ipu", simulation.unit(unit).params);
    auto timed = simulation.wrap(unit, models::create_substrate("ipu", simulation.unit(unit).params));
    functional->program(w, layer, {3, 0});
    timed->program(w, layer, {3, 0});
    models::MatrixRM y_functional(5, 2), y_timed(5, 2);
    functional->multiply(x, y_functional, {0, 1});
    timed->multiply(x.topRows(3), y_timed.topRows(3), {0, 1});
    timed->multiply(x.bottomRows(2), y_timed.bottomRows(2), {3, 1});
    simulation.run_pending();
    EXPECT_EQ(std::memcmp(y_functional.data(), y_timed.data(), sizeof(float) * 10), 0);
    auto c = counters(*timed);
    EXPECT_EQ(c["tiles_used"], 2);
    EXPECT_EQ(c["runs"], 3);
    EXPECT_EQ(c["supersteps"], 6);
    EXPECT_EQ(c["sync_cycles"], 3 * 10);
    EXPECT_EQ(c["exchange_cycles"], 3 * (74 + 18));
    EXPECT_EQ(c["compute_cycles"], 3 * (32 + 2));
    EXPECT_EQ(c["cycles"], 408);
    EXPECT_EQ(c["plan_cycles"], 408);  // the functional level's estimate from the plan agrees
    EXPECT_EQ(c["macs"], 3 * 2 * 2 * 64);  // every run is a full batch (the last one padded)
    EXPECT_EQ(c["reduction_adds"], 3 * 2 * 2);
    EXPECT_EQ(counters(*functional)["plan_cycles"], 408);
  }
}

// --vcd: the unit's superstep and phase and every tile group's phase are in the waveform.
TEST(IpuCycle, WaveformHasTheSuperstepsAndTileGroups) {
  const std::string vcd = std::string(::testing::TempDir()) + "ipu_cycle_test";
  std::vector<std::string> written;
  {
    sim::CycleSimulation simulation({small_ipu("ipu", 1)}, vcd);
    auto timed = simulation.wrap(0, models::create_substrate("ipu", simulation.unit(0).params));
    timed->program(random_matrix(2, 64, 1), models::LayerInfo{"fc", "Gemm", 0, 0}, {3, 0});
    models::MatrixRM y(2, 2);
    timed->multiply(random_matrix(2, 64, 2), y, {0, 1});
    simulation.run_pending();
    written = simulation.close_waveforms();
  }
  ASSERT_EQ(written.size(), 1u);
  std::ifstream in(written[0]);
  std::stringstream text;
  text << in.rdbuf();
  for (const char* signal : {"superstep", "phase", "tiles0", "tiles1"}) EXPECT_NE(text.str().find(signal), std::string::npos) << signal;
}
