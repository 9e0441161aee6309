#include "studies/vta_tune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "models/det_math.h"
#include "models/error.h"
#include "models/vta_substrate.h"
#include "nn/graph.h"
#include "nn/json.h"
#include "nn/onnx_io.h"
#include "sim/vta_cycle.h"
#include "studies/hardware.h"

namespace faultline::studies {

namespace vta = models::vta;

std::vector<TuneLayer> vta_layers_of_model(const std::string& model, const hwcfg::HardwareConfig& original, const std::string& unit, int images) {
  if (images < 1) throw Error("--batch: must be at least 1, got " + std::to_string(images));
  hwcfg::HardwareConfig config = original;
  const hwcfg::HardwareUnit* target = nullptr;
  for (hwcfg::HardwareUnit& u : config.units) {
    // Shapes only: a fixed activation range (no calibration data needed) and no faults.
    if (u.kind == "vta") {
      u.params.set_number("global_scale", 8);
      for (const char* rate : {"inp_bit_error_rate", "wgt_bit_error_rate", "acc_bit_error_rate", "uop_bit_error_rate", "dram_bit_error_rate"})
        if (u.params.numbers().count(rate)) u.params.set_number(rate, 0);
      u.schedule.clear();  // tuned layers are measured from their default schedule on
    }
    if (u.name == unit) target = &u;
  }
  if (!target) throw Error(config.source + ": no unit '" + unit + "'");
  if (target->kind != "vta") throw Error(config.source + ": unit '" + unit + "' is of kind " + target->kind + ", tune tunes vta units");
  auto graph = nn::load_onnx(model);
  std::set<std::string> mapped;
  std::vector<std::string> order;
  for (const nn::LinearLayer* layer : graph->layers()) {
    const hwcfg::HardwareUnit* u = config.unit_for(layer->name(), layer->op_type());
    if (u && u->name == unit) {
      mapped.insert(layer->name());
      order.push_back(layer->name());
    }
  }
  if (mapped.empty()) throw Error(config.source + ": no layer of " + model + " is mapped to unit '" + unit + "'");
  std::map<std::string, TuneLayer> found;
  std::mutex mutex;
  vta::set_read_capture([&](const vta::CapturedRead& r) {
    std::string name = r.layer;
    const auto group = name.find(" (group ");
    if (group != std::string::npos) name = name.substr(0, group);
    std::lock_guard<std::mutex> lock(mutex);
    if (!mapped.count(name) || found.count(name)) return;
    TuneLayer t;
    t.name = name;
    t.shape = r.conv;
    t.shape.weights.clear();
    t.shape.bias.clear();
    t.shape.name = name;
    t.images = r.lowered.images;
    found.emplace(name, std::move(t));
  });
  try {
    std::vector<nn::Tensor> inputs;
    for (const nn::ValueInfo& info : graph->inputs()) {
      nn::Shape shape = info.shape;
      for (std::size_t d = 0; d < shape.size(); ++d)
        if (shape[d] <= 0) shape[d] = d == 0 ? images : 1;
      if (!shape.empty()) shape[0] = images;
      inputs.emplace_back(shape, info.dtype);
    }
    studies::program(config, *graph, models::ProgramContext{1, 0});
    (void)graph->run(std::move(inputs));
  } catch (...) {
    vta::set_read_capture({});
    throw;
  }
  vta::set_read_capture({});
  std::vector<TuneLayer> layers;
  for (const std::string& name : order)
    if (found.count(name)) layers.push_back(found.at(name));
  return layers;
}

std::vector<TuneLayer> vta_layers_from_table(const std::string& path, int images) {
  if (images < 1) throw Error("--batch: must be at least 1, got " + std::to_string(images));
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot be read");
  std::vector<TuneLayer> layers;
  std::set<std::string> names;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    TuneLayer t;
    long long v[7];
    if (!(fields >> t.name)) continue;
    const std::string where = path + ":" + std::to_string(number);
    for (long long& x : v)
      if (!(fields >> x)) throw Error(where + ": expected NAME IN_CHANNELS HEIGHT WIDTH OUT_CHANNELS KERNEL STRIDE PAD");
    std::string extra;
    if (fields >> extra) throw Error(where + ": unexpected '" + extra + "' after the 8 fields");
    const char* what[7] = {"in_channels", "height", "width", "out_channels", "kernel", "stride", "pad"};
    for (int k = 0; k < 7; ++k)
      if (v[k] < (k == 6 ? 0 : 1) || v[k] > 65536) throw Error(where + ": " + what[k] + " " + std::to_string(v[k]) + " is out of range");
    if (!names.insert(t.name).second) throw Error(where + ": layer '" + t.name + "' appears twice");
    vta::ConvLayer& s = t.shape;
    s.name = t.name;
    s.in_channels = static_cast<int>(v[0]), s.height = static_cast<int>(v[1]), s.width = static_cast<int>(v[2]), s.out_channels = static_cast<int>(v[3]);
    s.kernel_h = s.kernel_w = static_cast<int>(v[4]);
    s.stride_h = s.stride_w = static_cast<int>(v[5]);
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = static_cast<int>(v[6]);
    s.weights.assign(static_cast<std::size_t>(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w, 0);
    try {
      s.validate();
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    s.weights.clear();
    t.images = images;
    layers.push_back(std::move(t));
  }
  if (layers.empty()) throw Error(path + ": no layers");
  return layers;
}

namespace {

std::string timing_key(const vta::VtaTiming& timing) {
  std::ostringstream k;
  for (const models::ParamSpec& spec : vta::VtaTiming::table().specs(timing)) k << " " << spec.name << "=" << spec.fallback;
  return k.str();
}

// FNV-1a (a fixed hash: std::hash differs between standard libraries).
std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : text) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

// The one cycle-level simulation of the process (SystemC elaborates once), reused for every
// measurement; its GEMM products are skipped (all data are zero, timing does not depend on values).
sim::VtaCycleSimulation& simulation(const vta::VtaConfig& config, const vta::VtaTiming& timing) {
  static std::unique_ptr<sim::VtaCycleSimulation> sim;
  static vta::VtaTiming made_with;
  if (!sim) {
    sim = std::make_unique<sim::VtaCycleSimulation>(config, timing);
    made_with = timing;
  } else if (timing_key(made_with) != timing_key(timing)) {
    throw Error("tune: one process measures with one VTA timing");
  }
  sim->configure(config);
  const std::size_t lanes = static_cast<std::size_t>(config.batch() * config.block());
  sim->machine().set_gemm_batch([lanes](const std::vector<vta::VtaMachine::GemmWork>& work, std::int32_t* products) {
    std::fill(products, products + work.size() * lanes, 0);  // zero data: every product is zero
  });
  return *sim;
}

}  // namespace

std::uint64_t measure_vta_cycles(const vta::ConvLayer& shape, int images, const vta::Schedule& schedule, const vta::VtaConfig& config,
                                 const vta::VtaTiming& timing) {
  vta::ConvLayer layer = shape;
  layer.weights.assign(static_cast<std::size_t>(layer.out_channels) * layer.in_channels * layer.kernel_h * layer.kernel_w, 0);
  layer.bias.assign(static_cast<std::size_t>(layer.out_channels), 0);  // a bias entry per output, as every lowered read has
  vta::LoweredLayer lowered = vta::lower_conv(layer, images, config, schedule);
  return simulation(config, timing).run(lowered.program, lowered.dram).cycles;
}

namespace {

std::string shape_key(const vta::ConvLayer& s, int images) {
  std::ostringstream k;
  k << s.in_channels << "x" << s.height << "x" << s.width << "->" << s.out_channels << ",k" << s.kernel_h << "x" << s.kernel_w << ",s" << s.stride_h << "x"
    << s.stride_w << ",p" << s.pad_top << "." << s.pad_left << "." << s.pad_bottom << "." << s.pad_right << ",n" << images;
  return k.str();
}

std::string hardware_key(const vta::VtaConfig& c, const vta::VtaTiming& timing) {
  std::ostringstream k;
  k << "batch" << c.log_batch << " block" << c.log_block << " uop" << c.log_uop_buff_size << " inp" << c.log_inp_buff_size << " wgt" << c.log_wgt_buff_size << " acc"
    << c.log_acc_buff_size;
  return k.str() + timing_key(timing);
}

// The measurement log: "SHAPE<TAB>SCHEDULE<TAB>CYCLES" lines after a header naming the hardware.
class MeasurementLog {
 public:
  MeasurementLog(const std::string& path, const std::string& hardware) {
    const std::string header = "# faultline vta tune log; hardware " + hardware;
    if (path.empty()) return;
    std::string text;
    if (std::filesystem::exists(path)) {
      std::ifstream in(path, std::ios::binary);
      std::ostringstream all;
      all << in.rdbuf();
      text = all.str();
    }
    // A line cut by a kill (no newline yet) is dropped and measured again.
    const auto last = text.rfind('\n');
    text.resize(last == std::string::npos ? 0 : last + 1);
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    while (std::getline(lines, line)) {
      ++number;
      if (number == 1) {
        if (line != header) throw Error(path + ": a tune log of other hardware (" + line + "); this tune is " + header.substr(2));
        continue;
      }
      const auto a = line.find('\t'), b = line.find('\t', a == std::string::npos ? 0 : a + 1);
      std::uint64_t cycles = 0;
      try {
        if (a == std::string::npos || b == std::string::npos) throw std::invalid_argument("fields");
        std::size_t used = 0;
        cycles = std::stoull(line.substr(b + 1), &used);
        if (used != line.size() - b - 1) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        throw Error(path + ":" + std::to_string(number) + ": not a tune log line (SHAPE, SCHEDULE and CYCLES separated by tabs)");
      }
      cycles_[line.substr(0, a) + "\t" + line.substr(a + 1, b - a - 1)] = cycles;
    }
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(path + ": cannot be written");
    out_ << (text.empty() ? header + "\n" : text);
    out_.flush();
  }
  bool find(const std::string& key, std::uint64_t* cycles) const {
    const auto it = cycles_.find(key);
    if (it == cycles_.end()) return false;
    *cycles = it->second;
    return true;
  }
  void add(const std::string& key, std::uint64_t cycles) {
    cycles_[key] = cycles;
    if (out_.is_open()) {
      out_ << key << "\t" << cycles << "\n";
      out_.flush();
    }
  }

 private:
  std::map<std::string, std::uint64_t> cycles_;
  std::ofstream out_;
};

// splitmix64 (Steele et al., OOPSLA 2014): a portable stream, so a seed picks the same
// configurations on every machine (std::shuffle's algorithm is the library's choice).
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) {  // uniform in [0, n), by rejection
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t v;
    do v = next();
    while (v >= limit);
    return static_cast<std::size_t>(v % n);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// Gradient-boosted regression trees (Friedman, "Greedy function approximation", Ann. Stat. 2001):
// squared loss, depth-limited trees fitted to the residuals, shrinkage. Small and deterministic.
class BoostedTrees {
 public:
  void fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y) {
    trees_.clear();
    base_ = y.empty() ? 0 : std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
    std::vector<double> residual(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) residual[i] = y[i] - base_;
    std::vector<std::size_t> all(y.size());
    std::iota(all.begin(), all.end(), 0);
    for (int t = 0; t < kTrees; ++t) {
      Tree tree;
      grow(tree, x, residual, all, 0);
      for (std::size_t i = 0; i < y.size(); ++i) residual[i] -= kShrink * tree.predict(x[i]);
      trees_.push_back(std::move(tree));
    }
  }
  double predict(const std::vector<double>& x) const {
    double v = base_;
    for (const Tree& t : trees_) v += kShrink * t.predict(x);
    return v;
  }

 private:
  static constexpr int kTrees = 40, kDepth = 4;
  static constexpr double kShrink = 0.3;
  struct Node {
    int feature = -1;  // -1: a leaf
    double threshold = 0, value = 0;
    int left = 0, right = 0;
  };
  struct Tree {
    std::vector<Node> nodes;
    double predict(const std::vector<double>& x) const {
      int n = 0;
      while (nodes[static_cast<std::size_t>(n)].feature >= 0) {
        const Node& node = nodes[static_cast<std::size_t>(n)];
        n = x[static_cast<std::size_t>(node.feature)] <= node.threshold ? node.left : node.right;
      }
      return nodes[static_cast<std::size_t>(n)].value;
    }
  };
  int grow(Tree& tree, const std::vector<std::vector<double>>& x, const std::vector<double>& r, const std::vector<std::size_t>& rows, int depth) {
    const int index = static_cast<int>(tree.nodes.size());
    tree.nodes.emplace_back();
    double sum = 0;
    for (std::size_t i : rows) sum += r[i];
    tree.nodes.back().value = rows.empty() ? 0 : sum / static_cast<double>(rows.size());
    if (depth == kDepth || rows.size() < 2) return index;
    // The split with the largest reduction of the squared error (sum² / count on each side).
    double best_gain = 1e-12, best_threshold = 0;
    int best_feature = -1;
    const std::size_t features = x[rows[0]].size();
    std::vector<std::size_t> order(rows);
    for (std::size_t f = 0; f < features; ++f) {
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[a][f] < x[b][f]; });
      double left = 0;
      const double parent = sum * sum / static_cast<double>(rows.size());
      for (std::size_t k = 0; k + 1 < order.size(); ++k) {
        left += r[order[k]];
        const double a = x[order[k]][f], b = x[order[k + 1]][f];
        if (a == b) continue;
        const double nl = static_cast<double>(k + 1), nr = static_cast<double>(order.size() - k - 1);
        const double gain = left * left / nl + (sum - left) * (sum - left) / nr - parent;
        if (gain > best_gain) {
          best_gain = gain;
          best_feature = static_cast<int>(f);
          best_threshold = (a + b) / 2;
        }
      }
    }
    if (best_feature < 0) return index;
    std::vector<std::size_t> lo, hi;
    for (std::size_t i : rows) (x[i][static_cast<std::size_t>(best_feature)] <= best_threshold ? lo : hi).push_back(i);
    const int l = grow(tree, x, r, lo, depth + 1);
    const int h = grow(tree, x, r, hi, depth + 1);
    Node& node = tree.nodes[static_cast<std::size_t>(index)];
    node.feature = best_feature;
    node.threshold = best_threshold;
    node.left = l;
    node.right = h;
    return index;
  }
  double base_ = 0;
  std::vector<Tree> trees_;
};

// The cost model's features of a configuration: its knobs (log2) and what it needs of each
// buffer. (models/det_math.h's log: the same bits on every machine, so a seed picks the same
// configurations everywhere.)
double lg(double v) { return models::det::log(v) * 1.4426950408889634; }  // log2
std::vector<double> features(const vta::Schedule& s, const vta::ScheduleCheck& c) {
  return {lg(s.tile_b), lg(s.tile_h), lg(s.tile_w), lg(s.tile_ci), lg(s.tile_co), static_cast<double>(s.h_nthread), static_cast<double>(s.oc_nthread),
          lg(1.0 + static_cast<double>(c.inp_entries)), lg(1.0 + static_cast<double>(c.wgt_entries)), lg(1.0 + static_cast<double>(c.acc_entries)),
          lg(1.0 + static_cast<double>(c.uops))};
}

}  // namespace

std::vector<LayerTuning> tune_vta(const std::vector<TuneLayer>& layers, const vta::VtaConfig& config, const vta::VtaTiming& timing, const TuneOptions& options) {
  const std::string& strategy = options.strategy;
  if (strategy != "exhaustive" && strategy != "random" && strategy != "xgb" && strategy != "validity")
    throw Error("--strategy: unknown strategy '" + strategy + "' (exhaustive, random, xgb, validity)");
  if (options.budget < 0) throw Error("--budget: must not be negative, got " + std::to_string(options.budget));
  if (options.batch < 1) throw Error("--batch-size: must be at least 1");
  config.validate();
  MeasurementLog log(options.log, hardware_key(config, timing));
  std::vector<LayerTuning> results;
  for (const TuneLayer& layer : layers) {
    const std::size_t layer_index = results.size();
    LayerTuning t;
    t.layer = layer;
    const std::string shape = shape_key(layer.shape, layer.images);
    const std::vector<vta::Schedule> space = vta::schedule_space(vta::schedule_extents(layer.shape, layer.images, config));
    t.space = space.size();
    // The cheap validity check of every configuration (no measurement), on the given threads.
    std::vector<vta::ScheduleCheck> checks(space.size());
    {
      const int threads = std::max(1, std::min<int>(options.threads, static_cast<int>(space.size())));
      std::vector<std::thread> pool;
      for (int w = 0; w < threads; ++w)
        pool.emplace_back([&, w] {
          for (std::size_t i = static_cast<std::size_t>(w); i < space.size(); i += static_cast<std::size_t>(threads))
            checks[i] = vta::check_schedule(layer.shape, layer.images, space[i], config);
        });
      for (auto& th : pool) th.join();
    }
    std::vector<std::size_t> valid_indices;
    for (std::size_t i = 0; i < space.size(); ++i) {
      if (checks[i].valid()) valid_indices.push_back(i);
      else ++t.invalid_by_reason[vta::reason_name(checks[i].reason)];
    }
    t.valid = valid_indices.size();
    const auto measure = [&](const vta::Schedule& s) {
      const std::string key = shape + "\t" + vta::to_string(s);
      std::uint64_t cycles = 0;
      if (!log.find(key, &cycles)) {
        cycles = measure_vta_cycles(layer.shape, layer.images, s, config, timing);
        log.add(key, cycles);
      }
      return cycles;
    };
    t.default_schedule = vta::default_schedule(layer.shape, layer.images, config);
    t.default_cycles = measure(t.default_schedule);

    // The strategy's trials.
    const std::size_t budget = options.budget > 0 ? std::min<std::size_t>(static_cast<std::size_t>(options.budget), space.size()) : space.size();
    Rng rng{options.seed * 0x9E3779B97F4A7C15ull ^ fnv1a(shape)};
    std::vector<std::size_t> untried(space.size());
    std::iota(untried.begin(), untried.end(), 0);
    std::vector<std::size_t> picked;  // trial order as space indices
    const auto pick = [&](std::size_t index) {
      picked.push_back(index);
      untried.erase(std::find(untried.begin(), untried.end(), index));
      TuneTrial trial;
      trial.schedule = space[index];
      trial.reason = checks[index].reason;
      if (checks[index].valid()) trial.cycles = measure(space[index]);
      t.trials.push_back(trial);
      if (options.on_trial) options.on_trial(layer_index, layers.size(), picked.size(), budget);
    };
    if (strategy == "exhaustive") {
      for (std::size_t i = 0; i < budget; ++i) pick(i);
    } else if (strategy == "random") {
      while (picked.size() < budget) pick(untried[rng.below(untried.size())]);
    } else {
      BoostedTrees model;
      while (picked.size() < budget && !untried.empty()) {
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(options.batch), budget - picked.size());
        std::vector<std::size_t> batch;
        if (picked.empty()) {
          // The first batch: random over the space (xgb), or over the valid configurations (validity).
          std::vector<std::size_t> pool = strategy == "validity" ? valid_indices : untried;
          if (pool.empty()) pool = untried;
          while (batch.size() < n && !pool.empty()) {
            const std::size_t k = rng.below(pool.size());
            batch.push_back(pool[k]);
            pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(k));
          }
        } else {
          std::vector<std::vector<double>> x;
          std::vector<double> y;
          double worst = 0;
          bool any_valid = false;
          for (const TuneTrial& tr : t.trials)
            if (tr.reason == vta::InvalidReason::None) {
              const double v = -lg(static_cast<double>(tr.cycles));
              worst = any_valid ? std::min(worst, v) : v;
              any_valid = true;
            }
          for (std::size_t k = 0; k < picked.size(); ++k) {
            x.push_back(features(space[picked[k]], checks[picked[k]]));
            // A failed trial scores below every measured one (AutoTVM: a failed build scores 0).
            y.push_back(t.trials[k].reason == vta::InvalidReason::None ? -lg(static_cast<double>(t.trials[k].cycles)) : (any_valid ? worst - 1 : -64));
          }
          model.fit(x, y);
          std::vector<std::pair<double, std::size_t>> scored;
          for (std::size_t i : untried) scored.emplace_back(-model.predict(features(space[i], checks[i])), i);
          std::sort(scored.begin(), scored.end());
          std::set<std::size_t> chosen;
          std::size_t next = 0;
          while (batch.size() < n && chosen.size() < untried.size()) {
            std::size_t index;
            if (rng.uniform() < 0.05) {  // exploration
              index = untried[rng.below(untried.size())];
            } else {
              while (chosen.count(scored[next].second)) ++next;
              index = scored[next].second;
            }
            if (chosen.insert(index).second) batch.push_back(index);
          }
        }
        for (std::size_t index : batch) pick(index);
      }
    }

    // The best, and how many trials it took.
    for (const TuneTrial& tr : t.trials)
      if (tr.reason == vta::InvalidReason::None && (t.best_cycles == 0 || tr.cycles < t.best_cycles)) {
        t.best_cycles = tr.cycles;
        t.best = tr.schedule;
      }
    if (t.best_cycles == 0) {  // no valid trial within the budget: the default stands
      t.best = t.default_schedule;
      t.best_cycles = t.default_cycles;
    }
    std::uint64_t space_best = 0;
    std::size_t logged = 0;
    for (std::size_t i : valid_indices) {
      std::uint64_t cycles = 0;
      if (log.find(shape + "\t" + vta::to_string(space[i]), &cycles)) {
        ++logged;
        space_best = space_best == 0 ? cycles : std::min(space_best, cycles);
      }
    }
    t.reference_is_space_best = logged == valid_indices.size() && logged > 0;
    t.reference_cycles = t.reference_is_space_best ? space_best : t.best_cycles;
    std::size_t valid_seen = 0;
    for (std::size_t k = 0; k < t.trials.size(); ++k) {
      const TuneTrial& tr = t.trials[k];
      if (tr.reason != vta::InvalidReason::None) continue;
      ++valid_seen;
      if (t.trials_to_within_1pct == 0 && static_cast<double>(tr.cycles) <= 1.01 * static_cast<double>(t.reference_cycles)) t.trials_to_within_1pct = k + 1;
      if (t.trials_to_best == 0 && tr.cycles == t.reference_cycles) {
        t.trials_to_best = k + 1;
        t.measurements_to_best = valid_seen;
      }
    }
    if (options.progress) {
      char line[512];
      std::snprintf(line, sizeof line, "%-16s space %6zu, valid %5zu (%5.1f %%), default %10llu cycles, best %10llu (%s, %.2fx), trials to best %zu", layer.name.c_str(),
                    t.space, t.valid, 100.0 * static_cast<double>(t.valid) / static_cast<double>(std::max<std::size_t>(1, t.space)),
                    static_cast<unsigned long long>(t.default_cycles), static_cast<unsigned long long>(t.best_cycles), vta::to_string(t.best).c_str(),
                    static_cast<double>(t.default_cycles) / static_cast<double>(t.best_cycles), t.trials_to_best);
      options.progress(line);
    }
    results.push_back(std::move(t));
  }
  return results;
}

std::string tuning_json(const std::vector<LayerTuning>& results, const TuneOptions& options) {
  std::ostringstream out;
  const auto q = [](const std::string& s) {
    nn::JsonWriter w;
    w.value(s);
    return w.str();
  };
  out << "{\n  \"strategy\": " << q(options.strategy) << ", \"seed\": " << options.seed << ", \"budget\": " << options.budget << ", \"batch\": " << options.batch
      << ",\n  \"layers\": [";
  for (std::size_t l = 0; l < results.size(); ++l) {
    const LayerTuning& t = results[l];
    const vta::ConvLayer& s = t.layer.shape;
    out << (l ? "," : "") << "\n    {\"layer\": " << q(t.layer.name) << ", \"images\": " << t.layer.images << ", \"in_channels\": " << s.in_channels << ", \"height\": " << s.height
        << ", \"width\": " << s.width << ", \"out_channels\": " << s.out_channels << ", \"kernel\": " << s.kernel_h << ", \"stride\": " << s.stride_h
        << ", \"pad\": " << s.pad_top << ",\n     \"space\": " << t.space << ", \"valid\": " << t.valid << ", \"invalid_share\": {";
    bool first = true;
    for (int r = 1; r < vta::kInvalidReasons; ++r) {
      const char* name = vta::reason_name(static_cast<vta::InvalidReason>(r));
      const auto it = t.invalid_by_reason.find(name);
      const double share = it == t.invalid_by_reason.end() ? 0.0 : static_cast<double>(it->second) / static_cast<double>(std::max<std::size_t>(1, t.space));
      out << (first ? "" : ", ") << q(name) << ": " << share;
      first = false;
    }
    out << "},\n     \"default\": {\"schedule\": " << q(vta::to_string(t.default_schedule)) << ", \"cycles\": " << t.default_cycles << "}, \"best\": {\"schedule\": "
        << q(vta::to_string(t.best)) << ", \"cycles\": " << t.best_cycles << "}, \"speedup_over_default\": "
        << static_cast<double>(t.default_cycles) / static_cast<double>(t.best_cycles) << ",\n     \"reference_cycles\": " << t.reference_cycles
        << ", \"reference_is_space_best\": " << (t.reference_is_space_best ? "true" : "false") << ", \"trials_to_best\": " << t.trials_to_best
        << ", \"measurements_to_best\": " << t.measurements_to_best << ", \"trials_to_within_1pct\": " << t.trials_to_within_1pct << ",\n     \"trials\": [";
    for (std::size_t k = 0; k < t.trials.size(); ++k) {
      const TuneTrial& tr = t.trials[k];
      out << (k ? ", " : "") << "[" << q(vta::to_string(tr.schedule)) << ", ";
      if (tr.reason == vta::InvalidReason::None) out << tr.cycles;
      else out << q(vta::reason_name(tr.reason));
      out << "]";
    }
    out << "]}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

}  // namespace faultline::studies
