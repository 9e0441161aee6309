// The command line on bad input: one line on stderr naming the file/field, exit status 2.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/dataset.h"
#include "nn/graph.h"
#include "nn/npy.h"
#include "nn/onnx_io.h"
#include "nn/train.h"

using namespace faultline;
namespace fs = std::filesystem;

namespace {

struct Result {
  int status = -1;
  std::string out;  // stdout and stderr together
};

Result run_command(const std::string& cmd) {
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int status = pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Result run(const std::string& args) { return run_command(std::string(FAULTLINE_BINARY) + " " + args + " 2>&1"); }

// The command with stdout and stderr on a pseudo-terminal (script -qec; its exit status is the command's).
Result run_on_terminal(const std::string& args) {
  return run_command("script -qec '" + std::string(FAULTLINE_BINARY) + " " + args + "' /dev/null 2>&1");
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("faultline_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    model_ = (dir_ / "mlp.onnx").string();
    if (!fs::exists(model_)) nn::TrainableNetwork("mlp", 1, 28, 28, 10, 1).save_onnx(model_);
  }
  // Expects exit status 2 and a single line containing every needle.
  void expect_usage_error(const std::string& args, std::vector<std::string> needles) {
    Result r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    for (const auto& n : needles) EXPECT_NE(r.out.find(n), std::string::npos) << "'" << n << "' not in: " << r.out;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(dir_ / name, std::ios::binary);
    out << bytes;
  }

  fs::path dir_;
  std::string model_;
};

TEST_F(Cli, HelpAndUnknowns) {
  EXPECT_EQ(run("--help").status, 0);
  for (const char* c : {"train", "eval", "infer"}) {
    Result r = run(std::string(c) + " --help");
    EXPECT_EQ(r.status, 0) << c;
    EXPECT_NE(r.out.find("usage: faultline"), std::string::npos);
  }
  EXPECT_EQ(run("frobnicate").status, 2);
  expect_usage_error("eval --model " + model_ + " --bogus 1", {"bogus"});
  expect_usage_error("train --epochs many --out x.onnx", {"epochs"});
  expect_usage_error("train --arch resnet --out x.onnx", {"--arch", "resnet"});
  expect_usage_error("train --epochs 0 --out x.onnx", {"--epochs"});
  expect_usage_error("eval", {"model"});
  expect_usage_error("eval --model " + model_ + " --threads 0", {"--threads"});
  expect_usage_error("eval --model " + model_ + " --limit -5", {"--limit"});
}

TEST_F(Cli, BadFiles) {
  expect_usage_error("eval --model " + path("absent.onnx") + " --limit 10", {"absent.onnx"});
  write("bad.onnx", "definitely not a protobuf \xff\xff\xff");
  expect_usage_error("eval --model " + path("bad.onnx") + " --limit 10", {"bad.onnx", "not an ONNX model"});
  write("bad.yaml", "name: x\nunits:\n  u:\n    kind: ideal\n    sigma: 2\n");
  expect_usage_error("eval --model " + model_ + " --hw " + path("bad.yaml"), {"bad.yaml:5:5", "units.u.sigma"});
  expect_usage_error("eval --model " + model_ + " --hw " + path("absent.yaml"), {"absent.yaml"});
  fs::create_directories(dir_ / "data");
  write("data/t10k-images-idx3-ubyte", std::string("\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x1c\x00\x00\x00\x1c", 16) + std::string(100, 'x'));
  write("data/t10k-labels-idx1-ubyte", std::string("\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02", 10));
  expect_usage_error("eval --model " + model_ + " --data " + path("data"), {"t10k-images-idx3-ubyte", "truncated"});
}

TEST_F(Cli, HardwareCheckShowAndOverrides) {
  for (const char* preset : {"ideal", "walking_noise_additive", "walking_noise_multiplicative", "rram_memory", "rram_crossbar",
                             "pcm_crossbar", "bss2_analog", "int8_digital"}) {
    Result r = run(std::string("hw check ") + preset);
    EXPECT_EQ(r.status, 0) << preset << ": " << r.out;
    EXPECT_NE(r.out.find(": ok ("), std::string::npos) << r.out;
  }
  Result shown = run("hw show rram_crossbar --set units.xbar.adc_bits=6");
  ASSERT_EQ(shown.status, 0) << shown.out;
  EXPECT_NE(shown.out.find("adc_bits: 6  #"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("ir_drop: 0  #"), std::string::npos) << shown.out;  // defaults filled in
  expect_usage_error("hw check rram_crossbar --set units.xbar.adc_bits=60", {"rram_crossbar.yaml (--set)", "units.xbar.adc_bits", "[0, 16]"});
  expect_usage_error("hw check rram_crossbar --set units.xbar.adc_bits=many", {"units.xbar.adc_bits", "must be a number"});
  expect_usage_error("hw check rram_crossbar --set units.xbar.sparkle=1", {"unknown field 'units.xbar.sparkle'"});
  expect_usage_error("hw check rram_crossbar --set nonsense", {"--set 'nonsense'", "PATH=VALUE"});
  expect_usage_error("hw check no_such_preset", {"no_such_preset", "presets:"});
  expect_usage_error("hw frobnicate ideal", {"unknown action"});
  write("bad_kind.yaml", "name: x\nunits:\n  m:\n    kind: analog_mac\n    order: sideways\n");
  expect_usage_error("hw check " + path("bad_kind.yaml"), {"bad_kind.yaml:5:12", "units.m.order", "natural"});
  write("bad_range.yaml", "name: x\nunits:\n  m:\n    kind: rram_memory\n    levels: 3\n");
  expect_usage_error("hw check " + path("bad_range.yaml"), {"bad_range.yaml:4:5", "power of two"});
  expect_usage_error("eval --model " + model_ + " --trials 0", {"--trials"});
  write("sites.yaml", "name: x\nnoise:\n  - after: \"pool*\"\n    additive: 0.1\n");
  expect_usage_error("eval --model " + model_ + " --limit 10 --hw " + path("sites.yaml"), {"sites.yaml", "noise[0]", "matches no node"});
  Result kinds = run("hw kinds");
  EXPECT_EQ(kinds.status, 0);
  EXPECT_NE(kinds.out.find("### `analog_crossbar`"), std::string::npos);
}

// hwcfg/README.md's parameter reference is the output of `faultline hw kinds`.
TEST_F(Cli, HardwareReadmeIsUpToDate) {
  Result kinds = run("hw kinds");
  std::ifstream in(std::string(FAULTLINE_SOURCE_DIR) + "/hwcfg/README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(readme.find(kinds.out), std::string::npos) << "regenerate with: faultline hw kinds";
}

// Sweeps, traces, reports and hardware-in-the-loop training on bad input: one line, exit 2.
TEST_F(Cli, StudiesRejectBadInput) {
  const std::string m = "--model " + model_;
  expect_usage_error("sweep " + m, {"--sweep, --walking", "PATH=SPEC", "Walking Noise mode"});
  expect_usage_error("sweep " + m + " --sweep units.x", {"--sweep 'units.x'", "PATH=SPEC"});
  expect_usage_error("sweep " + m + " --walking additive --sweep a=1:2", {"choose one mode"});
  expect_usage_error("sweep " + m + " --walking additive --layers zzz", {"--layers", "'zzz' matches no linear layer"});
  expect_usage_error("sweep " + m + " --walking loud", {"--walking", "'loud'"});
  expect_usage_error("sweep " + m + " --walking additive --sigma log:1:0:3", {"--sigma", "positive"});
  expect_usage_error("sweep " + m + " --hw rram_crossbar --sweep units.xbar.adc_bits=4:99", {"units.xbar.adc_bits", "must be in"});
  expect_usage_error("sweep " + m + " --walking additive --trials 0", {"--trials"});
  expect_usage_error("trace " + m + " --hw nope.yaml --out " + path("t"), {"nope.yaml"});
  expect_usage_error("trace " + m + " --hw ideal --out " + path("t") + " --fit-shape x", {"--fit-shape", "'x'"});
  expect_usage_error("trace " + m + " --hw ideal --out " + path("t") + " --max-samples 0", {"--max-samples"});
  expect_usage_error("trace " + m + " --hw ideal --out " + path("t") + " --level warp", {"--level", "'warp'"});
  expect_usage_error("report " + path("missing.json"), {"missing.json: no such file"});
  write("notresult.json", "{\"x\": 1}");
  expect_usage_error("report " + path("notresult.json") + " --out " + path("rep"), {"notresult.json", "not a faultline result"});
  write("broken.json", "{\"x\": ");
  expect_usage_error("report " + path("broken.json") + " --out " + path("rep"), {"broken.json", "not JSON"});
  expect_usage_error("train --out " + path("x.onnx") + " --hw ideal --noise walking_noise_additive", {"--hw, --noise", "choose one"});
  expect_usage_error("train --out " + path("x.onnx") + " --noise rram_crossbar", {"rram_crossbar.yaml", "not noise"});
  expect_usage_error("train --out " + path("x.onnx") + " --set units.noise.sigma_add=1", {"--set", "needs --hw or --noise"});
  expect_usage_error("train --out " + path("x.onnx") + " --noise " + dir_.string(), {"noise_from_trace.yaml"});
}

// A trace, its fit and replay, and a report, from the command line.
TEST_F(Cli, TraceFitAndReport) {
  Result t = run("trace --model " + model_ + " --hw rram_crossbar --limit 50 --max-samples 64 --check-trials 2 --out " + path("trace"));
  ASSERT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("replay of"), std::string::npos) << t.out;
  for (const char* f : {"trace.json", "noise_from_trace.yaml", "noise_fit.json", "fit_check.json", "0_fc1.ideal.npy", "3_fc4.hardware.npy"})
    EXPECT_TRUE(fs::exists(dir_ / "trace" / f)) << f;
  EXPECT_EQ(nn::load_npy(path("trace/0_fc1.ideal.npy")).shape(), (nn::Shape{50, 256}));
  Result e = run("eval --model " + model_ + " --hw " + path("trace/noise_from_trace.yaml") + " --hw rram_crossbar --limit 50 --trials 2 --out " + path("e.json"));
  ASSERT_EQ(e.status, 0) << e.out;
  Result r = run("report " + path("e.json") + " --out " + path("report"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "report" / "report.md"));
  EXPECT_TRUE(fs::exists(dir_ / "report" / "01_hardware_accuracy.svg"));
  Result n = run("train --arch mlp --epochs 1 --limit 256 --noise " + path("trace") + " --out " + path("aware.onnx"));
  EXPECT_EQ(n.status, 0) << n.out;
  EXPECT_NE(n.out.find("noise_from_trace in the loop"), std::string::npos) << n.out;
}

// A Walking Noise sweep with several trials gives each midpoint a bootstrap interval, in the
// terminal table, the midpoints CSV, the JSON and the report; with one trial there is none.
TEST_F(Cli, WalkingNoiseMidpointsCarryABootstrapInterval) {
  const std::string sweep = "sweep --model " + model_ + " --walking additive --sigma log:0.01:100:9 --layers fc1 --limit 300 --tolerance 0.2";
  Result s = run(sweep + " --trials 3 --out " + path("walk3"));
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("95 % CI (bootstrap)"), std::string::npos) << s.out;
  std::ifstream csv(path("walk3.midpoints.csv"));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  EXPECT_EQ(header.rfind("layer,found,midpoint_sigma,midpoint_ci_low,midpoint_ci_high,bootstrap_replicates,", 0), 0u) << header;
  EXPECT_NE(row.find(",2000,"), std::string::npos) << row;
  std::ifstream in(path("walk3.json"));
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find("\"midpoint_ci\":["), std::string::npos);
  Result r = run("report " + path("walk3.json") + " --out " + path("walk_report"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream md(path("walk_report/report.md"));
  const std::string report((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("| layer | midpoint sigma | 95 % CI (bootstrap over trials) |"), std::string::npos) << report;
  EXPECT_NE(report.find("95 % bootstrap CI over the trials, 2000 replicates"), std::string::npos) << report;
  Result one = run(sweep + " --trials 1 --out " + path("walk1"));
  ASSERT_EQ(one.status, 0) << one.out;
  std::ifstream json1(path("walk1.json"));
  const std::string text1((std::istreambuf_iterator<char>(json1)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text1.find("midpoint_ci"), std::string::npos);
  // A hostile interval (low above high) is refused by the report with one line.
  std::string bad = json;
  const auto at = bad.find("\"midpoint_ci\":[");
  ASSERT_NE(at, std::string::npos);
  bad.replace(at, bad.find(']', at) - at + 1, "\"midpoint_ci\":[5,1]");
  write("bad_walk.json", bad);
  expect_usage_error("report " + path("bad_walk.json") + " --out " + path("bad_report"), {"midpoint_ci", "low above high"});
}

// Fine-tuning any imported model through the inference graph, with hardware in the loop; the
// written model loads and evaluates; --arch and --model exclude each other.
TEST_F(Cli, TrainFineTunesAnImportedModel) {
  Result t = run("train --model " + model_ + " --epochs 1 --limit 256 --hw bss2_analog --backward secant --out " + path("tuned.onnx"));
  ASSERT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("fine-tuning"), std::string::npos) << t.out;
  Result e = run("eval --model " + path("tuned.onnx") + " --hw ideal --limit 100");
  EXPECT_EQ(e.status, 0) << e.out;
  expect_usage_error("train --model " + model_ + " --arch mlp --out " + path("x.onnx"), {"--arch, --model", "choose one"});
  expect_usage_error("train --model " + path("missing.onnx") + " --out " + path("x.onnx"), {"missing.onnx"});
}

// --level cycle: timing tables, JSON and waveform; what it refuses.
TEST_F(Cli, CycleLevel) {
  const std::string json = path("cycle.json"), vcd = path("cycle.vcd");
  Result r = run("eval --model " + model_ + " --hw rram_memory --level cycle --limit 64 --threads 2 --out " + json + " --vcd " + vcd);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("timing (cycle level), per pass over 64 images"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("SystemC"), std::string::npos) << "no banner expected: " << r.out;
  std::ifstream j(json);
  const std::string text((std::istreambuf_iterator<char>(j)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"level\":\"cycle\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"cycles\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"cycle_level_per_pass\":{\"cycles\":"), std::string::npos) << text;
  std::ifstream w(vcd);
  const std::string wave((std::istreambuf_iterator<char>(w)), std::istreambuf_iterator<char>());
  EXPECT_NE(wave.find("$enddefinitions"), std::string::npos);
  EXPECT_NE(wave.find("rram_memory_memory"), std::string::npos);
  EXPECT_NE(wave.find("energy_pj"), std::string::npos);

  expect_usage_error("eval --model " + model_ + " --level fast", {"--level", "functional, cycle or rtl", "fast"});
  expect_usage_error("eval --model " + model_ + " --vcd " + vcd, {"--vcd", "--level cycle or rtl"});
  expect_usage_error("eval --model " + model_ + " --hw int8_digital --level cycle", {"int8_digital.yaml", "unit 'int8'", "no cycle-level model"});
  expect_usage_error("hw check rram_crossbar --set units.xbar.timing.adc_cycles=-1", {"units.xbar.timing.adc_cycles", "must be in"});
  expect_usage_error("hw check rram_crossbar --set units.xbar.timing.adc_speed=3", {"unknown field 'units.xbar.timing.adc_speed'"});
  expect_usage_error("hw check int8_digital --set units.int8.timing.clock_mhz=100", {"units.int8.timing", "no cycle-level model"});
}

// --level rtl and the hwcfg field that selects RTL.
TEST_F(Cli, RtlLevel) {
  const std::string vcd = path("rtl.vcd");
  Result r = run("eval --model " + model_ + " --hw int8_mac_array --level rtl --limit 8 --threads 2 --vcd " + vcd);
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream w(vcd);
  const std::string wave((std::istreambuf_iterator<char>(w)), std::istreambuf_iterator<char>());
  EXPECT_NE(wave.find("$enddefinitions"), std::string::npos);
  EXPECT_NE(wave.find("products_valid"), std::string::npos) << "internal RTL signals expected in the waveform";
  Result c = run("cosim --rtl approx_mac_array --vectors 300 --vcd " + path("cosim.vcd"));
  EXPECT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("0 mismatching"), std::string::npos) << c.out;
  EXPECT_TRUE(fs::exists(path("cosim.vcd")));
  // FST: the module's second verilation (TRACE_FST); an FST file starts with its header block (type 0).
  Result f = run("cosim --rtl mac_array --vectors 100 --fst " + path("cosim.fst"));
  EXPECT_EQ(f.status, 0) << f.out;
  std::ifstream fstin(path("cosim.fst"), std::ios::binary);
  const std::string fst_bytes((std::istreambuf_iterator<char>(fstin)), std::istreambuf_iterator<char>());
  ASSERT_GT(fst_bytes.size(), 100u);
  EXPECT_EQ(fst_bytes[0], '\0');
  expect_usage_error("cosim --rtl mac_array --vcd a.vcd --fst b.fst", {"--fst, --vcd"});
  expect_usage_error("eval --model " + model_ + " --hw int8_mac_array --fst x.fst", {"--fst", "--level rtl"});
  EXPECT_NE(r.out.find("RTL level: cycles of the RTL clock"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--threads 1"), std::string::npos) << r.out;
  expect_usage_error("eval --model " + model_ + " --hw int8_digital --level rtl", {"int8_digital.yaml", "unit 'int8'", "impl: rtl:NAME"});
  expect_usage_error("eval --model " + model_ + " --hw int8_digital --level rtl --set units.int8.impl=rtl:nonesuch",
                     {"unknown RTL module 'nonesuch'", "mac_array"});
  expect_usage_error("hw check int8_digital --set units.int8.impl=verilog", {"units.int8.impl", "rtl:NAME"});
  expect_usage_error("hw check rram_crossbar --set units.xbar.impl=rtl:mac_array", {"units.xbar.impl", "has no RTL binding"});
  expect_usage_error("eval --model " + model_ + " --hw int8_mac_array --level rtl --set units.int8.approx_drop_bits=3",
                     {"int8_mac_array.yaml", "mac_array", "approx_drop_bits 3"});
  expect_usage_error("cosim --rtl nonesuch", {"unknown RTL module 'nonesuch'"});
  expect_usage_error("cosim --rtl approx_mac_array --set drop_bits=x", {"--set", "integer"});
}

TEST_F(Cli, InferRunsAndChecksShapes) {
  nn::Tensor x({3, 1, 28, 28});
  for (std::int64_t k = 0; k < x.numel(); ++k) x.f()[k] = static_cast<float>(k % 17) / 17.0f;
  nn::save_npy(path("x.npy"), x);
  Result r = run("infer --model " + model_ + " --input " + path("x.npy") + " --output " + path("y.npy"));
  ASSERT_EQ(r.status, 0) << r.out;
  nn::Tensor y = nn::load_npy(path("y.npy"));
  auto g = nn::load_onnx(model_);
  g->program_ideal();
  nn::Tensor expected = g->run({x})[0];
  EXPECT_EQ(y.shape(), expected.shape());
  EXPECT_EQ(y.float_storage(), expected.float_storage());

  nn::save_npy(path("wrong.npy"), nn::Tensor({3, 1, 28, 27}));
  expect_usage_error("infer --model " + model_ + " --input " + path("wrong.npy") + " --output " + path("y.npy"),
                     {"input 'input'", "[?, 1, 28, 28]", "[3, 1, 28, 27]"});
  write("cut.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4',");
  expect_usage_error("infer --model " + model_ + " --input " + path("cut.npy") + " --output " + path("y.npy"), {"cut.npy"});
  expect_usage_error("infer --model " + model_ + " --input " + path("x.npy") + " --input " + path("x.npy") + " --output " + path("y.npy"),
                     {"1 input(s), 2 --input given"});
}

}  // namespace

// Output a person can read (issue 17): eval's tables fit 100 columns (the line naming the model
// and the description's file holds the user's paths and is exempt), show each kind's main
// counters by default and every counter with --verbose; a Walking Noise sweep prints sigma with 4
// significant digits (the JSON and the resume log keep it exact).
TEST_F(Cli, OutputFitsOneHundredColumns) {
  const auto long_lines = [](const std::string& text) {
    std::istringstream in(text);
    std::string line, found;
    while (std::getline(in, line))
      if (line.size() > 100 && line.rfind("model ", 0) != 0 && line.rfind("wrote ", 0) != 0) found += line + "\n";
    return found;
  };
  const Result plain = run("eval --model " + model_ + " --hw rram_crossbar --hw bss2_analog --limit 64 --level cycle");
  ASSERT_EQ(plain.status, 0) << plain.out;
  EXPECT_EQ(long_lines(plain.out), "");
  EXPECT_NE(plain.out.find("adc_saturations="), std::string::npos);
  EXPECT_EQ(plain.out.find("write_verify_iterations="), std::string::npos);  // not a main counter of analog_crossbar
  const Result verbose = run("eval --model " + model_ + " --hw rram_crossbar --limit 64 --verbose");
  ASSERT_EQ(verbose.status, 0) << verbose.out;
  EXPECT_EQ(long_lines(verbose.out), "");
  EXPECT_NE(verbose.out.find("write_verify_iterations="), std::string::npos);
  const Result sweep = run("sweep --model " + model_ + " --walking additive --sigma log:0.01:1:3 --layers fc1 --trials 1 --limit 32");
  ASSERT_EQ(sweep.status, 0) << sweep.out;
  EXPECT_NE(sweep.out.find("sigma=0.1 "), std::string::npos) << sweep.out;
  EXPECT_EQ(sweep.out.find("0.10000000"), std::string::npos) << sweep.out;
  EXPECT_EQ(long_lines(sweep.out), "");
}

// The same images as Fashion-MNIST's IDX files, stored as a float32 NHWC images.npy, give the
// same accuracy bits; the JSON records how the images were read.
TEST_F(Cli, EvalReadsANumpyFolderLikeTheIdxFiles) {
  const std::int64_t n = 300;
  const nn::Dataset idx = nn::load_dataset("fashion-mnist", false);
  nn::Tensor images({n, 28, 28, 1});
  std::copy(idx.images.begin(), idx.images.begin() + n * 784, images.f());
  std::vector<std::int64_t> labels(idx.labels.begin(), idx.labels.begin() + n);
  fs::create_directories(dir_ / "npyset");
  nn::save_npy(path("npyset/images.npy"), images);
  nn::save_npy(path("npyset/labels.npy"), nn::Tensor::ints({n}, labels));
  const Result a = run("eval --model " + model_ + " --hw rram_crossbar --limit 300 --out " + path("idx.json"));
  const Result b = run("eval --model " + model_ + " --hw rram_crossbar --data " + path("npyset") + " --layout nhwc --out " + path("npy.json"));
  ASSERT_EQ(a.status, 0) << a.out;
  ASSERT_EQ(b.status, 0) << b.out;
  auto accuracy = [](const std::string& file) {
    std::ifstream in(file);
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = json.find("\"accuracy\":{\"mean\":");
    return std::make_pair(json.substr(at, json.find(',', at) - at), json);
  };
  const auto [acc_a, json_a] = accuracy(path("idx.json"));
  const auto [acc_b, json_b] = accuracy(path("npy.json"));
  EXPECT_EQ(acc_a, acc_b);
  EXPECT_NE(json_a.find(R"("preprocessing":{"format":"idx","layout":"nchw","scale":"1/255"})"), std::string::npos) << json_a;
  EXPECT_NE(json_b.find(R"("preprocessing":{"format":"npy","layout":"nhwc","scale":"1"})"), std::string::npos) << json_b;
  EXPECT_NE(b.out.find("\n0 "), std::string::npos) << b.out;  // classes by number: the folder names none
}

// Long commands draw a progress bar with rate and time left on a terminal (here a pseudo-terminal
// from util-linux's script), and none into a pipe.
TEST_F(Cli, ProgressBarsOnTerminalsOnly) {
  const std::string sweep = "sweep --model " + model_ + " --walking additive --sigma log:0.01:1:3 --layers fc1 --trials 1 --limit 64";
  for (const std::string& args : {"eval --model " + model_ + " --limit 2000", sweep}) {
    const Result tty = run_on_terminal(args);
    EXPECT_EQ(tty.status, 0) << tty.out;
    EXPECT_NE(tty.out.find("/s  ETA "), std::string::npos) << args << "\n" << tty.out;
    const Result pipe = run(args);
    EXPECT_EQ(pipe.status, 0) << pipe.out;
    EXPECT_EQ(pipe.out.find("ETA"), std::string::npos) << args << "\n" << pipe.out;
  }
}

// CIFAR-10 binary batches end to end: a network built for 3 x 32 x 32 images, then an imported
// model fine-tuned on them with a normalization, then evaluated; the JSON names the format.
TEST_F(Cli, TrainsAndEvaluatesOnCifarBatches) {
  fs::create_directories(dir_ / "cifar");
  std::string train, test;
  for (int r = 0; r < 192; ++r) {
    const int label = r % 10;
    std::string record(1, static_cast<char>(label));
    for (int k = 0; k < 3072; ++k) record += static_cast<char>((k / 1024 == label % 3 ? 180 : 40) + (k * 7 + r) % 50);
    (r < 128 ? train : test) += record;
  }
  write("cifar/data_batch_1.bin", train);
  write("cifar/test_batch.bin", test);
  const std::string norm = " --normalize 0.5,0.5,0.5:0.25,0.25,0.25";
  const Result built = run("train --arch lenet5 --epochs 1 --data " + path("cifar") + norm + " --out " + path("cifar_lenet.onnx"));
  ASSERT_EQ(built.status, 0) << built.out;
  const Result tuned = run("train --model " + path("cifar_lenet.onnx") + " --epochs 2 --lr 1e-3 --data " + path("cifar") + norm + " --out " +
                           path("cifar_tuned.onnx"));
  ASSERT_EQ(tuned.status, 0) << tuned.out;
  EXPECT_NE(tuned.out.find("fine-tuning"), std::string::npos) << tuned.out;
  const Result eval = run("eval --model " + path("cifar_tuned.onnx") + " --data " + path("cifar") + norm + " --hw rram_crossbar --out " +
                          path("cifar.json"));
  ASSERT_EQ(eval.status, 0) << eval.out;
  EXPECT_NE(eval.out.find("(64 images)"), std::string::npos) << eval.out;
  EXPECT_NE(eval.out.find("airplane"), std::string::npos) << eval.out;  // CIFAR-10's class names
  std::ifstream in(path("cifar.json"));
  const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(json.find(R"("preprocessing":{"format":"cifar10","layout":"nchw","scale":"1/255","normalize":{"mean":[0.5,0.5,0.5],"std":[0.25,0.25,0.25]}})"),
            std::string::npos) << json;
  // The wrong preprocessing for the model's input is caught: 1-channel normalization of 3 channels.
  expect_usage_error("eval --model " + path("cifar_tuned.onnx") + " --data " + path("cifar") + " --normalize 0.5:0.25,0.3",
                     {"--normalize", "1 means but 2"});
}
