// Noise traces: what each linear layer's hardware computed next to the exact product of the same
// inputs, recorded during an evaluation at any level (functional, cycle, rtl), written as NPY
// arrays (float32, [rows, outputs]) with a JSON sidecar; and the per-layer noise model fitted
// from a trace, written as a hardware description of `trace_noise` units that the functional
// level replays fast.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "hwcfg/hardware_config.h"
#include "studies/study.h"

namespace faultline::traces {

struct LayerTrace {
  std::string name, op, unit, kind;
  std::int64_t outputs = 0;
  std::uint64_t rows_seen = 0;       // reads (rows of y) the layer made during the run
  std::vector<float> ideal, hardware;  // kept rows × outputs, rows in increasing global index
};

// Records up to `max_rows` rows of every linear layer's output while the graph runs. Which rows
// are kept is a pure function of (seed, layer, row index) — the rows with the smallest keyed
// hashes — so a trace is the same for any thread count.
class TraceRecorder {
 public:
  TraceRecorder(nn::Graph& graph, const hwcfg::HardwareConfig& config, std::int64_t max_rows, std::uint64_t seed);
  ~TraceRecorder();  // detaches from the graph
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;
  std::vector<LayerTrace> layers() const;

 private:
  struct Kept {
    std::uint64_t row;
    std::vector<float> ideal, hardware;
  };
  struct State {
    LayerTrace info;
    mutable std::mutex mutex;
    std::map<std::pair<std::uint64_t, std::uint64_t>, Kept> kept;  // (hash, row) → row data
  };
  nn::Graph& graph_;
  std::int64_t max_rows_;
  std::uint64_t seed_;
  std::vector<std::unique_ptr<State>> states_;
};

// What the sidecar (trace.json) records besides the layers.
struct TraceMeta {
  std::string model, data, hardware, hardware_source, hwcfg_yaml, level;
  std::uint64_t seed = 0;
  std::int64_t images = 0, max_samples = 0;
  double accuracy = 0;  // of the traced run
};

// Writes DIR/trace.json and DIR/LAYER.ideal.npy, DIR/LAYER.hardware.npy per layer.
void write_trace(const std::string& dir, const TraceMeta& meta, const std::vector<LayerTrace>& layers);
struct Trace {
  TraceMeta meta;
  std::vector<LayerTrace> layers;
};
// Runs one trial of `config` on `data` (studies::run_study with `options`) with a TraceRecorder of
// `max_rows` rows per layer attached, and returns the trace with its metadata (model and data
// name the sources; level, seed and hardware from the arguments). `on_progress` as run_study's.
Trace record_trace(nn::Graph& graph, const hwcfg::HardwareConfig& config, const nn::Dataset& data, const studies::StudyOptions& options,
                   std::int64_t max_rows, const std::string& model, const std::string& data_name,
                   const std::function<void(std::int64_t, std::int64_t)>& on_progress = {});
// Reads a trace folder; errors name the file and what is wrong.
Trace read_trace(const std::string& dir);

// Per-layer fitted noise: e = y_hw − y_exact ≈ σ(y)·z with σ(y) = a + b·|y|.
struct LayerFit {
  std::string layer, op;
  bool exact = false;              // no error at all: the layer stays ideal
  double sigma_offset = 0, sigma_slope = 0;
  std::array<double, 15> quantiles{};  // of z = e/σ(y), at models::kTraceQuantileProbabilities
  double rms_error = 0, mean_error = 0;
  std::uint64_t samples = 0;
};
// σ(y) is fitted by least squares to the error's standard deviation in 20 equal-count bins of |y|
// (a, b ≥ 0); the quantile table holds the empirical quantiles of z = e/σ(y).
LayerFit fit_layer(const LayerTrace& layer);
// The fitted model as a hardware description: one `trace_noise` unit per inexact layer, mapped to
// that layer alone; `shape` is "quantiles" or "gaussian".
std::string fitted_hwcfg_yaml(const std::vector<LayerFit>& fits, const TraceMeta& meta, const std::string& shape);
std::string fits_json(const std::vector<LayerFit>& fits, const TraceMeta& meta);

}  // namespace faultline::traces
