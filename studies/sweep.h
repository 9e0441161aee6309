// Sweeps: accuracy over a grid of hardware-description values, and Walking Noise (Borras, Klein,
// Fröning, arXiv 2212.10430): noise at one layer at a time, σ swept log-spaced, and each layer's
// midpoint noise level (the σ at which accuracy falls halfway between clean accuracy and chance,
// 1/classes), interpolated on the sweep and refined by bisection.
//
// Every point is T Monte Carlo trials; a trial is a pure function of (seed, trial, point), so
// trials may run anywhere (a TaskRunner: this process, or MPI ranks) and are combined in trial
// order, which makes the results the same bits for any thread or rank count.
//
// Results go to PREFIX.jsonl as each point finishes (a header line, then one row per point). A
// sweep started again with the same command reads that log, checks that it was written by the
// same sweep, drops a last line cut off by a kill, and continues with the first point the log
// does not have: the log, PREFIX.csv and PREFIX.json come out equal to those of an uninterrupted
// run. Adaptive points (bisection) are requested in a fixed order that depends only on earlier
// results, so the log of any run is a prefix of the uninterrupted run's log.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "studies/study.h"

namespace faultline::studies {

// One swept field: `path` as for --set, and the values it takes, as written to --set.
struct SweepAxis {
  std::string path;
  std::vector<std::string> values;
};

// Parses "PATH=SPEC": SPEC is "A:B" (integers A..B), "lin:A:B:N", "log:A:B:N" (N values, ends
// included), or a comma-separated list ("natural,reversed" or "0.1,0.2"). Throws faultline::Error
// naming `option` and what is wrong.
SweepAxis parse_sweep_axis(const std::string& spec, const std::string& option = "sweep");
// Values of a "log:A:B:N" or "lin:A:B:N" spec (also accepts a list "a,b,c").
std::vector<double> parse_number_range(const std::string& spec, const std::string& option);

// Where the trials of a batch of points run. `run(count, task)` must return task(k) for every
// k < count, in order, on every caller; `writer()` is true on the one process that writes files.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual std::vector<TrialOutcome> run(std::size_t count, const std::function<TrialOutcome(std::size_t)>& task) = 0;
  virtual bool writer() const { return true; }
  virtual int ranks() const { return 1; }
};
class LocalRunner final : public TaskRunner {
 public:
  std::vector<TrialOutcome> run(std::size_t count, const std::function<TrialOutcome(std::size_t)>& task) override;
};
// Exact byte form of a trial's outcome (doubles bit for bit), for sending it between processes.
std::string serialize_trial(const TrialOutcome& t);
TrialOutcome deserialize_trial(const std::string& bytes);

struct SweepOptions {
  std::string model;                 // path, for the record and the fingerprint
  std::string data;                  // dataset name, for the record
  std::string hw = "ideal";          // base hardware description
  std::vector<std::string> sets;     // fixed overrides
  std::vector<SweepAxis> axes;       // grid mode: the cartesian product, first axis slowest
  StudyOptions study;                // trials, seed, images (eval.limit), threads
  // Walking Noise mode ("" = grid mode): "additive" (y + N(0, σ)), "multiplicative" (y · N(1, σ))
  // or "combined" (both with the same σ), on the output of one layer at a time.
  std::string walking;
  std::string sigma = "log:1e-3:1e2:25";  // the σ grid
  std::string layers = "*";          // glob over layer names: the layers walked
  double tolerance = 0.05;           // bisection stops when σ_hi / σ_lo ≤ 1 + tolerance
  int max_bisections = 12;
  std::string out;                   // PREFIX: PREFIX.jsonl, PREFIX.csv, PREFIX.json
};

struct SweepRow {
  int index = 0;                     // position in the log
  std::string key;                   // identifies the point
  std::string role;                  // "grid", "clean", "sweep" or "bisect"
  std::vector<std::string> values;   // grid: one per axis
  std::string layer;                 // walking: the noisy layer ("" for clean)
  double sigma = 0;
  StudyResult result;                // accuracies, per-layer rms error and SNR
};

struct LayerMidpoint {
  std::string layer;
  bool found = false;
  std::string why;                   // when not found: "accuracy stays above the target in the swept range", ...
  double from_sweep = 0;             // log-linear interpolation on the sweep alone
  double midpoint = 0;               // after bisection
  double sigma_lo = 0, sigma_hi = 0; // final bracket
  int bisections = 0;
  // Its 95 % percentile bootstrap interval (bootstrap_midpoint below); with ≥ 2 trials only.
  bool ci_available = false;
  double ci_low = 0, ci_high = 0;    // 0 / +inf: open beyond the evaluated σ range
  int replicates = 0;
};

// The midpoint rule on one layer's evaluated points, sorted by σ (sweep and bisection points
// alike): the first point whose accuracy is below `target` and the point before it bracket the
// crossing, interpolated log-linearly. On a sweep's own means this is exactly the midpoint the
// bisection found (its final bracket is adjacent in σ: every bisection point left of it was at or
// above the target). 0 when the first point is already below the target, +inf when none is.
double crossing_midpoint(const std::vector<double>& sigmas, const std::vector<double>& accuracies, double target);

// 95 % percentile bootstrap interval of a Walking Noise midpoint (Efron & Tibshirani, "An
// Introduction to the Bootstrap", 1993, ch. 13): the Monte Carlo trials are resampled with
// replacement — the same trial indices at every point, the clean one included, because trial t
// draws the same noise stream at every point (ProgramContext{seed, t}) — and the midpoint is found
// again by crossing_midpoint with the target moved with the clean accuracy. `trials[p]` are the
// per-trial accuracies at sigmas[p] (ascending), `clean` those without noise. Resampling draws
// come from the counter-based RNG (seed, stream): the same interval on any thread or rank count.
struct MidpointInterval {
  double low = 0, high = 0;
  int replicates = 0;
};
MidpointInterval bootstrap_midpoint(const std::vector<double>& sigmas, const std::vector<std::vector<double>>& trials, const std::vector<double>& clean,
                                    double chance, int replicates, std::uint64_t seed, std::uint64_t stream);
inline constexpr int kMidpointBootstrapReplicates = 2000;

struct SweepOutcome {
  std::vector<SweepRow> rows;
  std::vector<LayerMidpoint> midpoints;  // walking mode
  double clean_accuracy = 0, chance = 0, target = 0;
  int resumed_rows = 0;              // rows taken from an existing log
  int evaluated_rows = 0;
};

// One row of a sweep log (a JSON object on line `line_number` of `path`), as the resume reads
// it. Throws faultline::Error "PATH:LINE[:COLUMN]: ..." for anything that is not a complete row.
SweepRow parse_sweep_row(const std::string& line, const std::string& path, int line_number);

// Runs the sweep (resuming from PREFIX.jsonl when it exists) and writes PREFIX.csv and
// PREFIX.json on the writer. `on_row` is called on the writer as each new row is logged, and
// `on_progress` after every row (taken from the log or evaluated) with the rows planned so far.
SweepOutcome run_sweep(Graph& graph, const Dataset& data, const SweepOptions& options, TaskRunner& runner,
                       const std::function<void(const SweepRow&, bool resumed)>& on_row = {},
                       const std::function<void(std::int64_t rows_done, std::int64_t rows_planned)>& on_progress = {});

// The sweep's result document (what PREFIX.json holds).
std::string sweep_json(const SweepOutcome& outcome, const SweepOptions& options);

// Per-layer table of a Walking Noise sweep (accuracy per σ, and the midpoints), or the grid's
// rows, for the terminal.
std::string sweep_table(const SweepOutcome& outcome, const SweepOptions& options);

}  // namespace faultline::studies
