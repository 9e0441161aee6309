// Sweeps: axis parsing, Walking Noise midpoints, resuming after a kill at any point, and results
// that do not depend on the thread count or on how trials are spread over processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/error.h"
#include "models/philox.h"
#include "nn/dataset.h"
#include "nn/onnx_io.h"
#include "studies/sweep.h"
#include "nn/train.h"

using namespace faultline;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// Runs tasks the way MPI ranks do: rank r takes r, r + N, ...; outcomes travel as bytes.
class InterleavedRunner final : public studies::TaskRunner {
 public:
  explicit InterleavedRunner(int ranks) : ranks_(ranks) {}
  std::vector<studies::TrialOutcome> run(std::size_t count, const std::function<studies::TrialOutcome(std::size_t)>& task) override {
    std::vector<studies::TrialOutcome> out(count);
    for (int r = ranks_ - 1; r >= 0; --r)  // last rank first: order of work must not matter
      for (std::size_t k = static_cast<std::size_t>(r); k < count; k += static_cast<std::size_t>(ranks_))
        out[k] = studies::deserialize_trial(studies::serialize_trial(task(k)));
    return out;
  }
  int ranks() const override { return ranks_; }

 private:
  int ranks_;
};

class Sweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("faultline_sweep_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // A briefly trained MLP: accuracy well above chance, so that midpoints exist.
    nn::Dataset train = nn::load_mnist_family("fashion-mnist", true);
    train.count = 3000;
    train.images.resize(static_cast<std::size_t>(train.count * train.image_size()));
    train.labels.resize(static_cast<std::size_t>(train.count));
    nn::TrainableNetwork net("mlp", 1, 28, 28, 10, 3);
    nn::TrainOptions o;
    o.arch = "mlp";
    o.epochs = 2;
    o.threads = 2;
    net.train(train, o);
    model_ = (dir_ / "mlp.onnx").string();
    net.save_onnx(model_);
    test_ = new nn::Dataset(nn::load_mnist_family("fashion-mnist", false));
  }
  static void TearDownTestSuite() {
    delete test_;
    fs::remove_all(dir_);
  }

  static studies::SweepOptions walking_options(const std::string& out) {
    studies::SweepOptions o;
    o.model = model_;
    o.data = "fashion-mnist";
    o.walking = "additive";
    o.sigma = "log:0.01:100:7";
    o.layers = "*";
    o.study.trials = 2;
    o.study.eval.limit = 200;
    o.study.eval.threads = 2;
    o.study.seed = 7;
    o.tolerance = 0.1;
    o.out = (dir_ / out).string();
    return o;
  }
  static studies::SweepOutcome run(const studies::SweepOptions& o, studies::TaskRunner& runner) {
    auto graph = nn::load_onnx(model_);
    return studies::run_sweep(*graph, *test_, o, runner);
  }
  static void expect_same_files(const std::string& a, const std::string& b, bool walking = true) {
    for (const char* ext : {".jsonl", ".csv", ".json", ".midpoints.csv"}) {
      if (!walking && std::string(ext) == ".midpoints.csv") continue;
      EXPECT_EQ(slurp(dir_ / (a + ext)), slurp(dir_ / (b + ext))) << a << " vs " << b << ext;
    }
  }

  static fs::path dir_;
  static std::string model_;
  static nn::Dataset* test_;
};
fs::path Sweep::dir_;
std::string Sweep::model_;
nn::Dataset* Sweep::test_ = nullptr;

TEST(SweepAxis, ParsesRangesAndRejectsBadSpecs) {
  EXPECT_EQ(studies::parse_sweep_axis("units.x.adc_bits=4:6").values, (std::vector<std::string>{"4", "5", "6"}));
  EXPECT_EQ(studies::parse_sweep_axis("units.x.order=natural,reversed").values, (std::vector<std::string>{"natural", "reversed"}));
  const auto log = studies::parse_sweep_axis("noise.0.additive=log:1e-3:1e2:6");
  ASSERT_EQ(log.values.size(), 6u);
  EXPECT_DOUBLE_EQ(std::stod(log.values[0]), 1e-3);
  EXPECT_NEAR(std::stod(log.values[1]), 1e-2, 1e-15);
  EXPECT_NEAR(std::stod(log.values[5]), 1e2, 1e-12);
  const auto lin = studies::parse_sweep_axis("a=lin:0:1:5");
  EXPECT_EQ(lin.values, (std::vector<std::string>{"0", "0.25", "0.5", "0.75", "1"}));
  expect_error([] { studies::parse_sweep_axis("units.x.adc_bits"); }, {"sweep", "PATH=SPEC"});
  expect_error([] { studies::parse_sweep_axis("a=6:4"); }, {"sweep a", "empty"});
  expect_error([] { studies::parse_sweep_axis("a=log:0:1:4"); }, {"positive"});
  expect_error([] { studies::parse_sweep_axis("a=log:1:x:4"); }, {"'x' is not a finite number"});
  expect_error([] { studies::parse_sweep_axis("a=1:2:3"); }, {"expected"});
  expect_error([] { studies::parse_sweep_axis("a=lin:0:1:0"); }, {"number of points"});
}

TEST(SweepAxis, TrialOutcomesTravelBitForBit) {
  studies::TrialOutcome t;
  t.trial = 3;
  t.accuracy = 0.1 + 0.2;
  t.images = 1234;
  t.class_accuracy = {1.0 / 3, 2.0 / 7};
  t.layers.resize(2);
  t.layers[1].error_sq = 1e-300;
  t.layers[1].signal_sq = 3.14159;
  t.layers[1].count = 77;
  t.layers[1].counters = {{"adc_saturations", 5}, {"stuck", 0.5}};
  const studies::TrialOutcome u = studies::deserialize_trial(studies::serialize_trial(t));
  EXPECT_EQ(u.trial, 3);
  EXPECT_EQ(u.accuracy, t.accuracy);
  EXPECT_EQ(u.images, 1234);
  EXPECT_EQ(u.class_accuracy, t.class_accuracy);
  ASSERT_EQ(u.layers.size(), 2u);
  EXPECT_EQ(u.layers[1].error_sq, 1e-300);
  EXPECT_EQ(u.layers[1].counters, t.layers[1].counters);
  expect_error([&] { studies::deserialize_trial(studies::serialize_trial(t).substr(0, 30)); }, {"truncated"});
}

// The midpoint of each layer is bracketed by two evaluated points, one at or above the target
// and one below, no wider than the stated tolerance, and lies between them.
TEST_F(Sweep, WalkingNoiseFindsBracketedMidpoints) {
  studies::LocalRunner local;
  const studies::SweepOptions o = walking_options("walk");
  const studies::SweepOutcome r = run(o, local);
  EXPECT_GT(r.clean_accuracy, 0.6);
  EXPECT_DOUBLE_EQ(r.chance, 0.1);
  EXPECT_DOUBLE_EQ(r.target, 0.5 * (r.clean_accuracy + 0.1));
  ASSERT_EQ(r.midpoints.size(), 4u);  // the mlp's four Gemm layers
  for (const auto& m : r.midpoints) {
    ASSERT_TRUE(m.found) << m.layer << ": " << m.why;
    EXPECT_LE(m.sigma_hi / m.sigma_lo, 1 + o.tolerance) << m.layer;
    EXPECT_GE(m.midpoint, m.sigma_lo);
    EXPECT_LE(m.midpoint, m.sigma_hi);
    EXPECT_GT(m.bisections, 0);
    double acc_lo = -1, acc_hi = -1;
    for (const auto& row : r.rows) {
      if (row.layer != m.layer) continue;
      if (row.sigma == m.sigma_lo) acc_lo = row.result.mean;
      if (row.sigma == m.sigma_hi) acc_hi = row.result.mean;
    }
    EXPECT_GE(acc_lo, r.target) << m.layer;
    ASSERT_GE(acc_hi, 0) << m.layer;
    EXPECT_LT(acc_hi, r.target) << m.layer;
    // The bootstrap's rule on the layer's evaluated means is the bisection's midpoint, bit for
    // bit; with 2 trials half the replicates resample {1, 2}, so the interval holds it.
    std::vector<std::pair<double, double>> points;
    for (const auto& row : r.rows)
      if (row.layer == m.layer) points.emplace_back(row.sigma, row.result.mean);
    std::sort(points.begin(), points.end());
    std::vector<double> sigmas, means;
    for (const auto& [s, a] : points) sigmas.push_back(s), means.push_back(a);
    EXPECT_EQ(studies::crossing_midpoint(sigmas, means, r.target), m.midpoint) << m.layer;
    ASSERT_TRUE(m.ci_available) << m.layer;
    EXPECT_EQ(m.replicates, studies::kMidpointBootstrapReplicates);
    EXPECT_LE(m.ci_low, m.midpoint) << m.layer;
    EXPECT_GE(m.ci_high, m.midpoint) << m.layer;
    EXPECT_LT(m.ci_low, m.ci_high) << m.layer;
  }
  // More noise than at the midpoint leaves less accuracy: the largest σ is near chance.
  for (const auto& row : r.rows) {
    if (row.role == "sweep" && row.sigma == 100) {
      EXPECT_LT(row.result.mean, 0.3) << row.key;
    }
  }
  // One row per point in the log: header + rows.
  const std::string log = slurp(o.out + ".jsonl");
  EXPECT_EQ(static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n')), r.rows.size() + 1);
}

// The crossing rule's edge cases: below the target at the first point, never below it, and an
// exact log-linear interpolation.
TEST(MidpointBootstrap, CrossingRule) {
  const std::vector<double> sigmas = {0.1, 1, 10, 100};
  EXPECT_EQ(studies::crossing_midpoint(sigmas, {0.4, 0.3, 0.2, 0.1}, 0.5), 0.0);
  EXPECT_TRUE(std::isinf(studies::crossing_midpoint(sigmas, {0.9, 0.9, 0.8, 0.7}, 0.5)));
  EXPECT_NEAR(studies::crossing_midpoint(sigmas, {0.9, 0.8, 0.4, 0.1}, 0.6), std::sqrt(10.0), 1e-12);  // halfway in log σ
  expect_error([] { studies::bootstrap_midpoint({1, 2}, {{0.5, 0.6}, {0.4, 0.3}}, {0.9}, 0.1, 10, 1, 2); }, {"at least 2 trials"});
  expect_error([] { studies::bootstrap_midpoint({1, 2}, {{0.5, 0.6}, {0.4}}, {0.9, 0.8}, 0.1, 10, 1, 2); }, {"as many trials"});
}

// Coverage of the 95 % bootstrap interval on synthetic sweeps with a known midpoint: accuracy
// falls linearly in log σ (so the log-linear interpolation has no bias) from the clean 0.85 to
// chance, each trial's accuracy at each point off by N(0, 0.02²) plus a per-trial offset shared by
// all points (as the same noise stream at every σ gives), 20 trials, 400 sweeps. The percentile
// bootstrap of a smooth function of means undercovers by O(1/n) (Efron & Tibshirani 1993, ch.
// 14), so the expected coverage is a little under 0.95; with 400 sweeps the binomial standard
// deviation is 0.011, and [0.89, 0.99] is the 99.9 % band (±3.3 sd) around 0.94 widened by that
// bias. The draws are fixed (counter-based RNG), so the test is deterministic.
TEST(MidpointBootstrap, IntervalCoversTheTrueMidpoint) {
  const int trials = 20, sweeps = 400;
  const double clean = 0.85, chance = 0.1, target = 0.5 * (clean + chance);
  std::vector<double> sigmas;
  for (double s = 0.01; s < 101; s *= std::pow(10.0, 0.25)) sigmas.push_back(s);
  // Linear in log10 σ: from clean at σ = 0.01 down 0.25 per decade; the target at 10^(2.9 - 2).
  const auto truth = [&](double s) { return std::max(chance, clean - 0.25 * (std::log10(s) + 2.0)); };
  const double true_midpoint = std::pow(10.0, (clean - target) / 0.25 - 2.0);
  const models::CounterRng rng(5, 6);
  std::uint64_t draw = 0;
  int covered = 0;
  for (int k = 0; k < sweeps; ++k) {
    std::vector<double> offset(trials), clean_trials(trials);
    for (int t = 0; t < trials; ++t) offset[static_cast<std::size_t>(t)] = 0.01 * rng.normal(draw++);
    for (int t = 0; t < trials; ++t) clean_trials[static_cast<std::size_t>(t)] = clean + offset[static_cast<std::size_t>(t)] + 0.02 * rng.normal(draw++);
    std::vector<std::vector<double>> at(sigmas.size(), std::vector<double>(trials));
    for (std::size_t p = 0; p < sigmas.size(); ++p)
      for (int t = 0; t < trials; ++t)
        at[p][static_cast<std::size_t>(t)] = truth(sigmas[p]) + offset[static_cast<std::size_t>(t)] + 0.02 * rng.normal(draw++);
    const studies::MidpointInterval ci = studies::bootstrap_midpoint(sigmas, at, clean_trials, chance, 1000, 9, static_cast<std::uint64_t>(k));
    covered += ci.low <= true_midpoint && true_midpoint <= ci.high;
  }
  const double coverage = static_cast<double>(covered) / sweeps;
  EXPECT_GE(coverage, 0.89);
  EXPECT_LE(coverage, 0.99);
  std::printf("bootstrap coverage %.4f over %d synthetic sweeps\n", coverage, sweeps);
}

// A sweep killed at any point (between rows, in the middle of a row, before the summaries) and
// started again gives the same files as one that ran through; a different sweep refuses the log.
TEST_F(Sweep, ResumesToTheSameFilesAfterAKillAnywhere) {
  studies::LocalRunner local;
  const studies::SweepOptions full = walking_options("full");
  const studies::SweepOutcome reference = run(full, local);
  const std::string log = slurp(full.out + ".jsonl");
  // Cut: nothing logged, the header only, in the middle of a row, and every row logged (killed
  // before the summaries were written).
  std::vector<std::size_t> cuts = {0, log.find('\n') + 1, log.size() / 2 + 17, log.size()};
  for (std::size_t cut : cuts) {
    studies::SweepOptions again = walking_options("cut");
    for (const char* ext : {".jsonl", ".csv", ".json", ".midpoints.csv"}) fs::remove(again.out + ext);
    {
      std::ofstream out(again.out + ".jsonl", std::ios::binary);
      out << log.substr(0, cut);
    }
    const studies::SweepOutcome r = run(again, local);
    expect_same_files("full", "cut");
    EXPECT_EQ(r.resumed_rows + r.evaluated_rows, static_cast<int>(reference.rows.size())) << "cut at " << cut;
  }
  studies::SweepOptions other = walking_options("cut");
  other.study.seed = 8;
  expect_error([&] { run(other, local); }, {"cut.jsonl", "different sweep"});
}

TEST_F(Sweep, SameFilesForAnyThreadCountAndRankSpread) {
  studies::LocalRunner local;
  studies::SweepOptions one = walking_options("threads1");
  one.study.eval.threads = 1;
  one.layers = "*3";  // keep it short: one layer
  run(one, local);
  studies::SweepOptions two = one;
  two.study.eval.threads = 2;
  two.out = (dir_ / "threads2").string();
  run(two, local);
  expect_same_files("threads1", "threads2");
  InterleavedRunner three(3);
  studies::SweepOptions ranks = one;
  ranks.out = (dir_ / "ranks3").string();
  run(ranks, three);
  expect_same_files("threads1", "ranks3");
}

TEST_F(Sweep, GridRowsFollowTheAxesAndBadValuesLeaveNoFile) {
  studies::LocalRunner local;
  studies::SweepOptions o;
  o.model = model_;
  o.hw = "walking_noise_additive";
  o.axes = {studies::parse_sweep_axis("units.noise.sigma_add=0,1,100"), studies::parse_sweep_axis("units.noise.sigma_mul=0,0.5")};
  o.study.trials = 2;
  o.study.eval.limit = 200;
  o.study.eval.threads = 2;
  o.out = (dir_ / "grid").string();
  const studies::SweepOutcome r = run(o, local);
  ASSERT_EQ(r.rows.size(), 6u);
  EXPECT_EQ(r.rows[1].values, (std::vector<std::string>{"0", "0.5"}));
  EXPECT_EQ(r.rows[2].values, (std::vector<std::string>{"1", "0"}));
  // σ = 0 everywhere is the clean network (exact layers, identical trials); σ_add = 100 is chance.
  EXPECT_EQ(r.rows[0].result.stddev, 0);
  EXPECT_GT(r.rows[0].result.mean, 0.6);
  EXPECT_LT(r.rows[4].result.mean, 0.3);
  EXPECT_GT(r.rows[4].result.layers[0].rms_error, 50);
  const std::string csv = slurp(o.out + ".csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_NE(csv.find("units.noise.sigma_add,units.noise.sigma_mul"), std::string::npos);

  studies::SweepOptions bad = o;
  bad.out = (dir_ / "bad").string();
  bad.axes = {studies::parse_sweep_axis("units.noise.sigma_add=0,-1")};
  expect_error([&] { run(bad, local); }, {"units.noise.sigma_add", "-1"});
  EXPECT_FALSE(fs::exists(bad.out + ".jsonl"));
  bad.axes = {studies::parse_sweep_axis("units.noise.nope=1")};
  expect_error([&] { run(bad, local); }, {"units.noise.nope"});
}

}  // namespace
