// Cycle counts of single layers of known shape against the formulas of sim/README.md, written
// out here independently of the modules.
//
// SystemC elaborates once per process: every TEST runs as its own process under CTest.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/error.h"
#include "models/rram_memory.h"
#include "models/substrate.h"
#include "sim/cycle_level.h"

using namespace faultline;

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

sim::UnitSpec unit(const std::string& name, const std::string& kind, const std::map<std::string, double>& params,
                   const std::map<std::string, double>& timing, std::vector<std::pair<std::int64_t, std::int64_t>> shapes) {
  const models::SubstrateKind* k = models::find_substrate_kind(kind);
  sim::UnitSpec u;
  u.name = name;
  u.kind = kind;
  u.params = models::default_params(k->params);
  u.timing = models::default_params(k->timing);
  u.energy = models::default_params(k->energy);
  for (const auto& [key, v] : params) u.params.set_number(key, v);
  for (const auto& [key, v] : timing) u.timing.set_number(key, v);
  u.block_shapes = std::move(shapes);
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

// sim/README.md, "Analog arrays": one array operation.
double array_operation(const models::Params& t, std::int64_t array_columns, std::int64_t v, std::int64_t r, std::int64_t c) {
  const std::int64_t adcs = ceil_div(array_columns, t.integer("columns_per_adc"));
  const double stages[4] = {static_cast<double>(t.integer("input_cycles") + r * t.integer("row_event_cycles")),
                            static_cast<double>(t.integer("integration_cycles")),
                            static_cast<double>(ceil_div(c, adcs) * t.integer("adc_cycles")), static_cast<double>(t.integer("accumulate_cycles"))};
  const double sum = stages[0] + stages[1] + stages[2] + stages[3];
  const double max = *std::max_element(stages, stages + 4);
  return t.flag("pipelined") ? sum + static_cast<double>(v - 1) * max : static_cast<double>(v) * sum;
}

// sim/README.md, "Analog arrays": a layer operation (tiles dealt round-robin, arrays in parallel).
// `per_tile(r, c)` gives one tile's cycles.
template <class F>
double over_tiles(std::int64_t inputs, std::int64_t outputs, std::int64_t rows, std::int64_t cols, std::int64_t arrays, F per_tile) {
  const std::int64_t rb = ceil_div(inputs, rows), tiles = rb * ceil_div(outputs, cols);
  const std::int64_t used = std::min(tiles, arrays);
  std::vector<double> busy(static_cast<std::size_t>(used), 0.0);
  for (std::int64_t k = 0; k < tiles; ++k) {
    const std::int64_t i = k % rb, j = k / rb;
    busy[static_cast<std::size_t>(k % used)] += per_tile(std::min(rows, inputs - i * rows), std::min(cols, outputs - j * cols));
  }
  return *std::max_element(busy.begin(), busy.end());
}

TEST(CycleLevel, AnalogArraysFollowTheFormula) {
  struct Case {
    sim::UnitSpec spec;
    std::int64_t inputs, outputs, rows, cols, arrays;
  };
  std::vector<Case> cases;
  // A crossbar with 3 × 3 tiles, one array each, pipelined (the defaults).
  cases.push_back({unit("xbar_pipelined", "analog_crossbar", {{"tile_rows", 256}, {"tile_cols", 128}}, {}, {{600, 300}}), 600, 300, 256, 128, 9});
  // The same layer on 2 arrays (tiles take turns), not pipelined, other latencies.
  cases.push_back({unit("xbar_two", "analog_crossbar", {{"tile_rows", 256}, {"tile_cols", 128}},
                        {{"arrays", 2}, {"pipelined", 0}, {"columns_per_adc", 32}, {"input_cycles", 3}, {"integration_cycles", 7},
                         {"adc_cycles", 2}, {"accumulate_cycles", 5}, {"program_row_cycles", 11}},
                        {{600, 300}}),
                   600, 300, 256, 128, 2});
  // BrainScaleS-2-like: row events one after another, column-parallel ADC, 128-row chunks.
  cases.push_back({unit("bss2", "analog_mac", {}, {}, {{300, 270}}), 300, 270, 128, 256, 6});
  std::vector<sim::UnitSpec> specs;
  for (const auto& c : cases) specs.push_back(c.spec);
  sim::CycleSimulation simulation(specs);

  const std::int64_t first = 37, second = 5;
  std::vector<std::unique_ptr<models::Substrate>> substrates;
  for (std::size_t u = 0; u < cases.size(); ++u) {
    const Case& c = cases[u];
    auto s = simulation.wrap(u, models::create_substrate(c.spec.kind, c.spec.params));
    s->program(random_matrix(c.outputs, c.inputs, 3 + static_cast<unsigned>(u)), {"layer", "Gemm", static_cast<int>(u), 0}, {1, 0});
    const models::MatrixRM x1 = random_matrix(first, c.inputs, 11).cwiseAbs(), x2 = random_matrix(second, c.inputs, 12).cwiseAbs();
    models::MatrixRM y1(first, c.outputs), y2(second, c.outputs);
    s->multiply(x1, y1, {0});
    s->multiply(x2, y2, {static_cast<std::uint64_t>(first)});
    substrates.push_back(std::move(s));
  }
  simulation.run_pending();

  for (std::size_t u = 0; u < cases.size(); ++u) {
    const Case& c = cases[u];
    const models::Params& t = c.spec.timing;
    const auto got = counters(*substrates[u]);
    double expected = 0, energy = 0;
    for (std::int64_t v : {first, second}) {
      expected += over_tiles(c.inputs, c.outputs, c.rows, c.cols, c.arrays,
                             [&](std::int64_t r, std::int64_t k) { return array_operation(t, c.cols, v, r, k); });
      over_tiles(c.inputs, c.outputs, c.rows, c.cols, c.arrays, [&](std::int64_t r, std::int64_t k) {
        const models::Params& e = c.spec.energy;
        energy += static_cast<double>(v) * (static_cast<double>(r) * e.number("input_pj") + static_cast<double>(r * k) * e.number("cell_pj") +
                                            static_cast<double>(k) * (e.number("adc_pj") + e.number("accumulate_pj")));
        return 0.0;
      });
    }
    EXPECT_EQ(got.at("cycles"), expected) << c.spec.name;
    EXPECT_EQ(got.at("layer_ops"), 2) << c.spec.name;
    EXPECT_EQ(got.at("macs"), static_cast<double>((first + second) * c.inputs * c.outputs)) << c.spec.name;
    EXPECT_NEAR(got.at("energy_pj"), energy, 1e-9 * energy) << c.spec.name;
    EXPECT_DOUBLE_EQ(got.at("time_ns"), expected * 1e3 / t.number("clock_mhz")) << c.spec.name;
    // Programming: rows one after another, write-verify rounds = write attempts per cell, rounded up.
    const double cells = got.count("cells") ? got.at("cells") : static_cast<double>(c.inputs * c.outputs);
    const double attempts = got.count("write_verify_iterations") ? got.at("write_verify_iterations") : cells;
    const double rounds = std::max(1.0, std::ceil(attempts / cells - 1e-9));
    const double program = over_tiles(c.inputs, c.outputs, c.rows, c.cols, c.arrays, [&](std::int64_t r, std::int64_t) {
      return static_cast<double>(r) * rounds * t.integer("program_row_cycles");
    });
    EXPECT_EQ(got.at("program_cycles"), program) << c.spec.name;
  }
}

// sim/README.md, "Memory + digital MAC".
struct MemoryLayout {
  std::vector<double> fetch, compute, bytes, lines;
};
MemoryLayout memory_layout(const models::Params& p, const models::Params& t, std::int64_t inputs, std::int64_t outputs, std::int64_t v) {
  MemoryLayout m;
  const std::int64_t mr = t.integer("mac_rows"), mc = t.integer("mac_cols"), line = t.integer("line_bytes"), banks = t.integer("banks");
  for (std::int64_t c0 = 0; c0 < outputs; c0 += mc)
    for (std::int64_t r0 = 0; r0 < inputs; r0 += mr) {
      const std::int64_t r = std::min(mr, inputs - r0), c = std::min(mc, outputs - c0);
      const std::int64_t lines = ceil_div(ceil_div(r * c * p.integer("weight_bits"), 8), line);
      m.lines.push_back(static_cast<double>(lines));
      m.bytes.push_back(static_cast<double>(lines * line));
      m.fetch.push_back(static_cast<double>(ceil_div(lines, banks) * t.integer("read_cycles")));
      m.compute.push_back(static_cast<double>(v + t.integer("mac_latency_cycles")));
    }
  return m;
}

TEST(CycleLevel, MemoryAndMacFollowTheFormula) {
  const std::map<std::string, double> small = {{"banks", 2}, {"line_bytes", 16}, {"mac_rows", 8}, {"mac_cols", 4}, {"read_cycles", 7}};
  // Write-verify with failing writes, so that lines need different numbers of rounds.
  const std::map<std::string, double> verifying = {{"weight_bits", 6}, {"verify_max_iterations", 6}, {"write_failure_rate", 0.3}, {"read_sigma", 0.02},
                                                   {"stuck_at_gmin_rate", 0.02}};
  std::vector<sim::UnitSpec> specs = {
      unit("double_buffered", "rram_memory", verifying, small, {{37, 11}}),
      unit("single_buffered", "rram_memory", {{"weight_bits", 6}}, [&] {
        auto t = small;
        t["weight_buffers"] = 1;
        return t;
      }(), {{37, 11}}),
      unit("defaults", "rram_memory", {}, {}, {{400, 120}}),
  };
  const std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {{37, 11}, {37, 11}, {400, 120}};
  sim::CycleSimulation simulation(specs);
  std::vector<std::unique_ptr<models::Substrate>> substrates;
  std::vector<models::MatrixRM> weights;
  const std::vector<std::int64_t> vectors = {3, 40};  // fetch-bound and compute-bound operations
  for (std::size_t u = 0; u < specs.size(); ++u) {
    auto s = simulation.wrap(u, models::create_substrate("rram_memory", specs[u].params));
    const auto [in, out] = shapes[u];
    weights.push_back(random_matrix(out, in, 5));
    s->program(weights.back(), {"layer", "Gemm", static_cast<int>(u), 0}, {2, 0});
    for (std::int64_t v : vectors) {
      const models::MatrixRM x = random_matrix(v, in, 6);
      models::MatrixRM y(v, out);
      s->multiply(x, y, {0});
    }
    substrates.push_back(std::move(s));
  }
  simulation.run_pending();
  for (std::size_t u = 0; u < specs.size(); ++u) {
    const auto [in, out] = shapes[u];
    const models::Params& t = specs[u].timing;
    const auto got = counters(*substrates[u]);
    double expected = 0, bytes = 0;
    for (std::int64_t v : vectors) {
      const MemoryLayout m = memory_layout(specs[u].params, t, in, out, v);
      const std::size_t b = m.fetch.size();
      if (t.integer("weight_buffers") == 1) {
        for (std::size_t k = 0; k < b; ++k) expected += m.fetch[k] + m.compute[k];
      } else {
        expected += m.fetch[0] + m.compute[b - 1];
        for (std::size_t k = 0; k + 1 < b; ++k) expected += std::max(m.compute[k], m.fetch[k + 1]);
      }
      for (double x : m.bytes) bytes += x;
    }
    EXPECT_EQ(got.at("cycles"), expected) << specs[u].name;
    EXPECT_EQ(got.at("mem_bytes_read"), bytes) << specs[u].name;
    EXPECT_EQ(got.at("macs"), static_cast<double>((vectors[0] + vectors[1]) * in * out)) << specs[u].name;
    // Programming: block by block; a line takes rounds × (write + verify), rounds = the most write
    // attempts of the weights with bits in it (from the device model); lines in one bank queue.
    const models::DeviceConfig device = models::DeviceConfig::from(specs[u].params);
    const models::RramWeightFormat format = models::RramWeightFormat::from(device, specs[u].params.integer("weight_bits"));
    models::LayerInfo info;
    info.index = static_cast<int>(u);
    const models::RramStoredWeights stored = models::store_rram_weights(device, format, weights[u], info, {2, 0});
    const std::int64_t mr = t.integer("mac_rows"), mc = t.integer("mac_cols"), line = t.integer("line_bytes"), banks = t.integer("banks");
    const std::int64_t wb = format.weight_bits;
    double program = 0, max_rounds = 0;
    for (std::int64_t c0 = 0; c0 < out; c0 += mc)
      for (std::int64_t r0 = 0; r0 < in; r0 += mr) {
        const std::int64_t rows = std::min(mr, in - r0), cols = std::min(mc, out - c0);
        std::vector<double> rounds(static_cast<std::size_t>(ceil_div(ceil_div(rows * cols * wb, 8), line)), 1.0);
        for (std::int64_t c = 0; c < cols; ++c)
          for (std::int64_t r = 0; r < rows; ++r) {
            const std::int64_t bit = (c * rows + r) * wb;
            const double a = stored.attempts[static_cast<std::size_t>((c0 + c) * in + r0 + r)];
            for (std::int64_t l = bit / 8 / line; l <= (bit + wb - 1) / 8 / line; ++l)
              rounds[static_cast<std::size_t>(l)] = std::max(rounds[static_cast<std::size_t>(l)], a);
          }
        std::vector<double> bank(static_cast<std::size_t>(banks), 0.0);
        for (std::size_t l = 0; l < rounds.size(); ++l) {
          bank[l % static_cast<std::size_t>(banks)] += rounds[l] * (t.integer("write_cycles") + t.integer("verify_cycles"));
          max_rounds = std::max(max_rounds, rounds[l]);
        }
        program += *std::max_element(bank.begin(), bank.end());
      }
    EXPECT_EQ(got.at("program_cycles"), program) << specs[u].name;
    if (u == 0) {
      EXPECT_GT(max_rounds, 1) << "write-verify should need repeats here";
    }

    // What the memory holds is what the behavioural model computes with: its weights, read
    // through an identity input, equal the decoded bytes of the simulated memory bit for bit.
    const models::MatrixRM identity = models::MatrixRM::Identity(in, in);
    models::MatrixRM wt(in, out);
    substrates[u]->multiply(identity, wt, {0});
    const models::MatrixRM held = simulation.stored_weights(u, static_cast<int>(u), 0);
    const models::MatrixRM functional = wt.transpose();
    ASSERT_EQ(held.rows(), functional.rows());
    EXPECT_EQ(std::memcmp(held.data(), functional.data(), sizeof(float) * static_cast<std::size_t>(held.size())), 0) << specs[u].name;
    if (u == 0) {
      EXPECT_GT(got.at("weight_errors"), 0) << "the device should have corrupted some weights here";
    }
  }
  // The weight buffers matter: double buffering hides fetches behind compute.
  EXPECT_LT(counters(*substrates[0]).at("cycles"), counters(*substrates[1]).at("cycles"));
}

// A second simulation in the same process is refused before it touches SystemC. (The claim is
// taken here without starting a simulation: an exception thrown after SystemC's coroutines have
// run trips AddressSanitizer's known false positive on stack switching, google/sanitizers#189.)
TEST(CycleLevel, OneSimulationPerProcess) {
  sim::claim_simulation("the test");
  try {
    sim::CycleSimulation second({unit("b", "analog_mac", {}, {}, {{10, 10}})});
    FAIL() << "a second simulation was elaborated";
  } catch (const faultline::Error& e) {
    EXPECT_NE(std::string(e.what()).find("after the test"), std::string::npos) << e.what();
  }
}

}  // namespace
