// Auto-tuning VTA schedules (issue 15): the configurations of each layer's schedule space
// (models/vta_schedule.h) measured on the cycle level (sim/vta_cycle.h: cycles of the layer's
// program at batch `images`), picked by one of four strategies as AutoTVM picks them:
//  - exhaustive: every configuration in the space's order (AutoTVM's GridSearchTuner);
//  - random: a seeded random order without repetition (RandomTuner);
//  - xgb: a gradient-boosted-tree cost model on the configurations' knobs and buffer needs,
//    refitted after every batch, proposing the batch of untried configurations it predicts
//    fastest, with 5 % random exploration (XGBTuner with its knob features; Chen et al., "Learning
//    to optimize tensor programs", NeurIPS 2018);
//  - validity: xgb whose first batch is drawn from the configurations the cheap validity check
//    passes instead of from the whole space: the validity-driven initialization of Rieber et al.
//    (arXiv 2205.15568), who had to learn validity; here it is known without a measurement.
// As in AutoTVM, every configuration a strategy picks is a trial: an invalid one fails without
// being run (its reason recorded) and scores as the worst; a valid one is measured.
//
// Measurements are deterministic and kept in a log (one JSON object per line, keyed by the
// layer's shape and the schedule, for one VTA configuration and timing), which makes a tune
// resumable -- a rerun after a kill replays the same picks, takes the logged cycles and measures
// only what is missing, so its final files are the same -- and lets strategies and seeds share
// measurements.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hwcfg/hardware_config.h"
#include "models/vta_lowering.h"
#include "models/vta_timing.h"

namespace faultline::studies {

struct TuneLayer {
  std::string name;                // the node name (a schedule in a hardware description is by it)
  models::vta::ConvLayer shape;    // shape only (no weights)
  int images = 1;                  // the batch it is tuned for
};

// The layers of `model` mapped to the vta unit `unit` of `config`, as that unit lowers them (a
// Gemm or MatMul as its 1 × 1 convolution), at batch `images`: found by running `images` zero
// inputs through the graph with a fixed activation range. Throws faultline::Error naming the
// model or unit when there is none.
std::vector<TuneLayer> vta_layers_of_model(const std::string& model, const hwcfg::HardwareConfig& config, const std::string& unit, int images);
// Layers from a table: one per line, `NAME IN_CHANNELS HEIGHT WIDTH OUT_CHANNELS KERNEL STRIDE PAD`
// ('#' starts a comment). Errors name the file and line.
std::vector<TuneLayer> vta_layers_from_table(const std::string& path, int images);

struct TuneOptions {
  std::string strategy = "exhaustive";  // exhaustive, random, xgb, validity
  std::int64_t budget = 0;              // trials per layer; 0: the whole space
  std::uint64_t seed = 1;
  int batch = 64;                       // trials between cost-model refits (AutoTVM XGBTuner plan_size)
  int threads = 1;                      // for the validity checks; measurements run on the one SystemC simulation
  std::string log;                      // the measurement log (created or resumed)
  std::function<void(const std::string& line)> progress;  // one line per finished layer (optional)
  // After every trial: (layer index, layers, trials done in this layer, this layer's budget).
  std::function<void(std::size_t layer, std::size_t layers, std::size_t trial, std::size_t budget)> on_trial;
};

struct TuneTrial {
  models::vta::Schedule schedule;
  models::vta::InvalidReason reason = models::vta::InvalidReason::None;
  std::uint64_t cycles = 0;  // valid ones
};

struct LayerTuning {
  TuneLayer layer;
  std::size_t space = 0, valid = 0;
  std::map<std::string, std::size_t> invalid_by_reason;  // reason name -> configurations of the space
  models::vta::Schedule default_schedule;
  std::uint64_t default_cycles = 0;
  std::vector<TuneTrial> trials;  // in the order the strategy picked them
  models::vta::Schedule best;     // the strategy's best (valid) configuration
  std::uint64_t best_cycles = 0;
  // The space's best, when every valid configuration of this shape is in the log (an exhaustive
  // tune has run); else the strategy's own best.
  std::uint64_t reference_cycles = 0;
  bool reference_is_space_best = false;
  // Trials (1-based) until the first configuration with reference_cycles, and within 1 % of it;
  // 0: not reached within the budget.
  std::size_t trials_to_best = 0, trials_to_within_1pct = 0;
  std::size_t measurements_to_best = 0;  // valid trials among trials_to_best
};

// Tunes every layer. Throws faultline::Error for an unknown strategy, a log of another VTA
// configuration or timing, or a layer no schedule fits.
std::vector<LayerTuning> tune_vta(const std::vector<TuneLayer>& layers, const models::vta::VtaConfig& config, const models::vta::VtaTiming& timing,
                                  const TuneOptions& options);

// The results as JSON (strategy, seed, per layer: shape, space size, valid count, invalid share
// by reason, default and best schedules with cycles, speedup, every trial, trials to the best).
std::string tuning_json(const std::vector<LayerTuning>& results, const TuneOptions& options);

// The cycles of one configuration at the cycle level (the tuner's measurement; exposed for tests
// and the RTL comparison of the study).
std::uint64_t measure_vta_cycles(const models::vta::ConvLayer& shape, int images, const models::vta::Schedule& schedule, const models::vta::VtaConfig& config,
                                 const models::vta::VtaTiming& timing);

}  // namespace faultline::studies
