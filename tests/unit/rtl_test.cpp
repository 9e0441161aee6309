// RTL co-simulation: every shipped RTL module against its behavioural twin on random stimulus,
// with back-pressure on the output stream and a reset in the middle of a stream; the twins'
// own properties; the pipeline's throughput in cycles.
//
// SystemC elaborates once per process: every TEST that simulates runs as its own process.
#include <gtest/gtest.h>

#include <cstdlib>

#include <cstring>

#include "studies/hardware.h"
#include "studies/levels.h"
#include "models/error.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "studies/study.h"
#include "nn/train.h"
#include "models/mvm_int8.h"
#include "sim/cosim.h"
#include "sim/cycle_level.h"
#include "sim/rtl_unit.h"

using namespace faultline;

namespace {

sim::CosimReport cosim(const std::string& rtl, std::int64_t vectors, double backpressure, bool reset,
                       std::map<std::string, long long> registers = {}) {
  sim::register_built_rtl();
  sim::CosimOptions o;
  o.rtl = rtl;
  o.vectors = vectors;
  o.seed = 11;
  o.backpressure = backpressure;
  o.reset_mid_stream = reset;
  o.registers = std::move(registers);
  o.weight_sets = 4;
  o.stimulus = sim::Stimulus::Uniform;
  o.pattern = sim::Backpressure::Random;
  return sim::run_cosim(o);
}

TEST(RtlCosim, MacArrayEqualsItsTwinUnderBackpressureAndReset) {
  const sim::CosimReport r = cosim("mac_array", 3000, 0.35, true);
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  EXPECT_GE(r.vectors, 3000);
}

TEST(RtlCosim, ApproxMacArrayEqualsItsTwinUnderBackpressureAndReset) {
  const sim::CosimReport r = cosim("approx_mac_array", 3000, 0.35, true, {{"drop_bits", 6}});
  EXPECT_EQ(r.twin, "twin.cpp");
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  // The agreement is not the trivial one: at the default 6 dropped bits most results are inexact.
  EXPECT_GT(r.differs_from_exact, 2900);
}

TEST(RtlCosim, ApproxMacArrayRegisterSetsTheDroppedBits) {
  const sim::CosimReport r = cosim("approx_mac_array", 2000, 0.1, false, {{"drop_bits", 3}});
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  EXPECT_GT(r.differs_from_exact, 0);
}

// One 16-wide vector per cycle once the weights are loaded: without back-pressure, N weight rows,
// V vectors and a 2-stage pipeline take N + V + 2 cycles.
TEST(RtlCosim, MacArrayTakesOneVectorPerCycle) {
  sim::register_built_rtl();
  sim::CosimOptions o;
  o.rtl = "mac_array";
  o.vectors = 500;
  o.weight_sets = 1;
  o.pattern = sim::Backpressure::None;
  o.reset_mid_stream = false;
  const sim::CosimReport r = sim::run_cosim(o);
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  EXPECT_EQ(r.stream_cycles, 16u + 500u + 2u);
}

// The default run: every stimulus under every back-pressure pattern, with the register taking
// random values within its 4 bits in all but the first weight set.
TEST(RtlCosim, ApproxMacArrayPassesTheDefaultMixedRun) {
  sim::register_built_rtl();
  sim::CosimOptions o;
  o.rtl = "approx_mac_array";
  const sim::CosimReport r = sim::run_cosim(o);
  EXPECT_EQ(r.mismatches, 0) << r.first_mismatch;
  EXPECT_EQ(r.missing, 0);
  EXPECT_GE(r.vectors, o.vectors);
  EXPECT_GT(r.differs_from_exact, 0);
}

// A register value is checked against the width module.txt declares (drop_bits: 4 bits).
TEST(RtlCosim, RegisterValuesMustFitTheirWidth) {
  sim::register_built_rtl();
  const sim::RtlModuleInfo& info = sim::find_rtl_module("approx_mac_array").info;
  EXPECT_EQ(sim::rtl_register_values(info, {{"drop_bits", 15}}, "x")[0].value, 15);
  EXPECT_EQ(sim::rtl_register_values(info, {}, "x")[0].value, 6);
  for (long long bad : {16LL, -1LL, 99999999999LL}) {
    try {
      sim::rtl_register_values(info, {{"drop_bits", bad}}, "--set");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("[0, 15]"), std::string::npos) << e.what();
    }
  }
}

TEST(RtlCosim, UnknownModuleAndRegisterAreErrors) {
  sim::register_built_rtl();
  sim::CosimOptions o;
  o.rtl = "no_such_unit";
  try {
    sim::run_cosim(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mac_array"), std::string::npos) << e.what();
  }
  o.rtl = "mac_array";
  o.registers["drop_bits"] = 2;
  EXPECT_THROW(sim::run_cosim(o), Error);
}

// The contract's register rule (rtl/README.md): a write applies to vectors accepted at later rising
// edges; vectors accepted before it and still in the pipeline keep the old value. approx_mac_array
// takes two vectors while out_ready is held low, then drop_bits changes from 6 to 0, then a third
// vector follows: the first two come out truncated at 6 bits, the third exact.
class Bench : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Bench);
  explicit Bench(const sc_core::sc_module_name& name) : sc_module(name) { SC_THREAD(run); }
  std::function<void()> body;

 private:
  void run() { body(); }
};

TEST(RtlContract, ARegisterWriteAppliesToVectorsAcceptedAfterIt) {
  sim::register_built_rtl();
  sim::claim_simulation("test");
  const sim::RtlModuleKind& kind = sim::find_rtl_module("approx_mac_array");
  const int n = kind.info.outputs, m = kind.info.inputs;
  auto unit = kind.create_direct("dut", sc_core::sc_time(1, sc_core::SC_NS));
  std::vector<std::int8_t> w(static_cast<std::size_t>(n * m));
  std::vector<std::vector<std::int8_t>> x(3, std::vector<std::int8_t>(static_cast<std::size_t>(m)));
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = static_cast<std::int8_t>(static_cast<int>((k * 37 + 11) % 256) - 128);
  for (std::size_t v = 0; v < 3; ++v)
    for (std::size_t j = 0; j < x[v].size(); ++j) x[v][j] = static_cast<std::int8_t>(static_cast<int>((v * 101 + j * 53 + 7) % 256) - 128);
  std::vector<std::int32_t> held, after;
  Bench bench("bench");
  bench.body = [&] {
    unit->reset();
    unit->write_register(0, 6);
    sim::RtlMatrixVectorUnit::TransferList first(m), second(m);
    for (int i = 0; i < n; ++i) std::copy_n(w.begin() + i * m, m, first.add(true));
    std::copy(x[0].begin(), x[0].end(), first.add(false));
    std::copy(x[1].begin(), x[1].end(), first.add(false));
    std::copy(x[2].begin(), x[2].end(), second.add(false));
    // out_ready low throughout: both vectors are accepted and stay in the pipeline.
    unit->stream(first, 0, held, [](std::uint64_t) { return true; }, 1000);
    unit->write_register(0, 0);
    unit->stream(second, 3, after, {}, 1000);
  };
  sc_core::sc_start();
  EXPECT_TRUE(held.empty());
  ASSERT_EQ(after.size(), static_cast<std::size_t>(3 * n));
  for (int v = 0; v < 3; ++v) {
    std::vector<std::int32_t> expected(static_cast<std::size_t>(n));
    models::int8_matrix_vector(w.data(), x[static_cast<std::size_t>(v)].data(), expected.data(), n, m, v < 2 ? 6 : 0);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), after.begin() + v * n)) << "vector " << v;
  }
}

// The twin: exact at 0 dropped bits for every pair of int8 values; otherwise never larger in
// magnitude than the exact product and short of it by less than 8 · 2^drop (8 partial products,
// each losing less than 2^drop).
TEST(ApproxMultiply, ExactAtZeroAndBoundedOtherwise) {
  for (int a = -128; a < 128; ++a)
    for (int b = -128; b < 128; ++b) {
      const auto x = static_cast<std::int8_t>(a), y = static_cast<std::int8_t>(b);
      ASSERT_EQ(models::approx_multiply(x, y, 0), a * b);
      for (int drop : {1, 4, 6, 9}) {
        const int approx = models::approx_multiply(x, y, drop);
        const int loss = std::abs(a * b) - std::abs(approx);
        ASSERT_GE(loss, 0) << a << "*" << b << " drop " << drop;
        ASSERT_LT(loss, 8 << drop) << a << "*" << b << " drop " << drop;
        ASSERT_TRUE(approx == 0 || (approx < 0) == (a * b < 0));
      }
    }
}

// --level rtl: a network whose int8_digital layers run on the RTL gives exactly the functional
// level's numbers — on mac_array the int8_digital model's, on approx_mac_array its twin's. When
// the registers make the twin compute what the parameters do not (approx_drop_bits 0, register
// drop_bits 3), the functional level computes the twin too: both levels equal the model with
// approx_drop_bits 3.
TEST(RtlLevel, NetworkOnRtlEqualsTheFunctionalLevel) {
  sim::register_built_rtl();
  const nn::Dataset test = nn::load_mnist_family("fashion-mnist", false);
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 5);
  nn::TrainOptions o;
  o.epochs = 1;
  o.threads = 2;
  nn::Dataset subset = nn::load_mnist_family("fashion-mnist", true);
  subset.count = 2000;
  subset.images.resize(static_cast<std::size_t>(subset.count * subset.image_size()));
  subset.labels.resize(static_cast<std::size_t>(subset.count));
  net.train(subset, o);
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5");
  studies::StudyOptions so;
  so.eval.limit = 40;
  so.eval.threads = 1;
  so.seed = 4;
  nn::Tensor batch(nn::Shape{8, 1, 28, 28});
  std::memcpy(batch.f(), test.images.data(), sizeof(float) * static_cast<std::size_t>(batch.numel()));

  const auto configs = [] {
    return std::vector<hwcfg::HardwareConfig>{
        hwcfg::load_hardware_config("int8_mac_array"), hwcfg::load_hardware_config("int8_approx_mac_array"),
        hwcfg::load_hardware_config("int8_approx_mac_array", {"units.int8.approx_drop_bits=0", "units.int8.registers.drop_bits=3"})};
  };
  std::vector<hwcfg::HardwareConfig> functional = configs();
  std::vector<studies::StudyResult> f_results;
  std::vector<nn::Tensor> f_outputs;
  for (const auto& c : functional) {
    f_results.push_back(studies::run_study(*graph, c, test, so));
    studies::program(c, *graph, {4, 0});
    f_outputs.push_back(graph->run({batch})[0]);
  }
  // The model with 3 dropped bits and no RTL module: what the twin at drop_bits 3 computes.
  const hwcfg::HardwareConfig model3 = hwcfg::load_hardware_config("int8_digital", {"units.int8.approx_drop_bits=3"});
  const studies::StudyResult model3_result = studies::run_study(*graph, model3, test, so);
  studies::program(model3, *graph, {4, 0});
  const nn::Tensor model3_output = graph->run({batch})[0];
  EXPECT_EQ(model3_result.accuracies, f_results[2].accuracies);
  for (std::size_t l = 0; l < model3_result.layers.size(); ++l) EXPECT_EQ(model3_result.layers[l].rms_error, f_results[2].layers[l].rms_error);
  EXPECT_EQ(std::memcmp(model3_output.f(), f_outputs[2].f(), sizeof(float) * static_cast<std::size_t>(model3_output.numel())), 0);

  std::vector<hwcfg::HardwareConfig> rtl = configs();
  auto simulation = studies::attach_rtl_level(rtl, *graph, "");
  for (std::size_t c = 0; c < rtl.size(); ++c) {
    SCOPED_TRACE(rtl[c].name);
    const studies::StudyResult r = studies::run_study(*graph, rtl[c], test, so);
    EXPECT_EQ(r.accuracies, f_results[c].accuracies);
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      EXPECT_EQ(r.layers[l].rms_error, f_results[c].layers[l].rms_error) << r.layers[l].name;
      EXPECT_GT(r.layers[l].counters.at("cycles"), 0) << r.layers[l].name;
    }
    studies::program(rtl[c], *graph, {4, 0});
    const nn::Tensor out = graph->run({batch})[0];
    EXPECT_EQ(std::memcmp(out.f(), f_outputs[c].f(), sizeof(float) * static_cast<std::size_t>(out.numel())), 0);
  }
  // The approximate multipliers change the network's outputs (the agreement above is not trivial).
  EXPECT_NE(std::memcmp(f_outputs[0].f(), f_outputs[1].f(), sizeof(float) * static_cast<std::size_t>(f_outputs[0].numel())), 0);
  EXPECT_NE(std::memcmp(f_outputs[0].f(), f_outputs[2].f(), sizeof(float) * static_cast<std::size_t>(f_outputs[0].numel())), 0);
}

}  // namespace
