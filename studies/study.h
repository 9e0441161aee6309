// Monte Carlo accuracy of a network on a hardware description: T trials, each re-programming the
// hardware (new programming noise, stuck cells, variation), with accuracy mean, standard
// deviation and a 95 % confidence interval, and per layer the error of its hardware output
// against the exact product of the same inputs and the hardware counters.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hwcfg/hardware_config.h"
#include "nn/evaluate.h"
#include "nn/json.h"

namespace faultline::studies {

// The engine's and the descriptions' types these studies are written in.
using nn::Dataset;
using nn::EvalOptions;
using nn::EvalResult;
using nn::Graph;
using nn::JsonWriter;
using nn::LinearLayer;
using nn::Tensor;
using hwcfg::HardwareConfig;
using hwcfg::HardwareUnit;


struct StudyOptions {
  EvalOptions eval;
  int trials = 1;
  std::uint64_t seed = 1;
  bool layer_errors = true;  // measure each layer's error against the exact product
  // Called after each trial's evaluation, before the layers' counters are read (the cycle level
  // runs its recorded operations through SystemC here).
  std::function<void()> after_evaluate;
  std::string level = "functional";  // recorded in the JSON
  nn::Preprocessing data_preprocessing;  // how the images were read, recorded in the JSON
};

struct LayerReport {
  std::string name, op_type, unit, kind;
  double rms_error = 0;      // sqrt(mean (y_hw − y_exact)²) over all trials and reads
  double snr_db = 0;         // 10·log10(Σ y_exact² / Σ (y_hw − y_exact)²); +inf when exact
  std::map<std::string, double> counters;  // summed over trials
};

struct StudyResult {
  std::string hardware;
  std::vector<double> accuracies;  // one per trial
  double mean = 0, stddev = 0, ci_low = 0, ci_high = 0;
  std::vector<double> class_accuracy;  // mean over trials
  std::vector<LayerReport> layers;
  std::int64_t images = 0;
  double seconds = 0;
};

// Two-sided 95 % Student-t quantile t_{0.975, dof} (dof ≥ 1).
double student_t95(int dof);

// One Monte Carlo trial's raw outcome: what run_study combines. Trials are independent (trial t
// programs with ProgramContext{seed, t}), so a sweep may evaluate them anywhere (another thread,
// another MPI rank) and combine them in trial order to get the same bits as run_study.
struct TrialOutcome {
  int trial = 0;
  double accuracy = 0;
  std::int64_t images = 0;
  std::vector<double> class_accuracy;
  struct Layer {
    double error_sq = 0, signal_sq = 0, count = 0;
    std::map<std::string, double> counters;
  };
  std::vector<Layer> layers;
};

TrialOutcome run_trial(Graph& graph, const HardwareConfig& config, const Dataset& data, const StudyOptions& options, int trial,
                       const std::function<void(std::int64_t done, std::int64_t total)>& on_progress = {});
// Combines trials (given in trial order) into a result: accuracy statistics, per-layer errors and
// summed counters. `graph` and `config` name the layers and their units.
StudyResult combine_trials(const Graph& graph, const HardwareConfig& config, const std::vector<TrialOutcome>& trials, int classes);

StudyResult run_study(Graph& graph, const HardwareConfig& config, const Dataset& data, const StudyOptions& options,
                      const std::function<void(std::int64_t done, std::int64_t total)>& on_progress = {});

// Human-readable table and JSON (no wall time or thread count, so that it is identical for any
// thread count).
// The accuracy line and the per-layer table (error, SNR and the kind's main counters, within 100
// columns; `verbose`: every counter).
std::string study_table(const StudyResult& result, bool verbose = false);
// The cycle level's per-layer and total cycles, simulated time, energy and utilisation of the
// reads (per pass over the images, i.e. per trial) and the time and energy of programming, from
// the counters `cycles`, `time_ns`, `energy_pj`, `macs`, `peak_macs`, `program_time_ns` and
// `program_energy_pj`; "" when no layer has them.
std::string study_timing_table(const StudyResult& result);
std::string study_json(const StudyResult& result, const std::string& model, const std::string& data, const StudyOptions& options);

}  // namespace faultline::studies
