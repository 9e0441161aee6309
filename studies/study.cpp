#include "studies/study.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "models/det_math.h"
#include "nn/json.h"
#include "studies/hardware.h"

namespace faultline::studies {

double student_t95(int dof) {
  // Quantiles t_{0.975, ν} for ν = 1..30 (standard tables); beyond, the Cornish–Fisher expansion
  // around z = 1.959964 is accurate to better than 1e-4.
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof < 1) return std::numeric_limits<double>::quiet_NaN();
  if (dof <= 30) return table[dof - 1];
  const double z = 1.959964, v = dof;
  return z + (z * z * z + z) / (4 * v) + (5 * z * z * z * z * z + 16 * z * z * z + 3 * z) / (96 * v * v);
}

TrialOutcome run_trial(Graph& graph, const HardwareConfig& config, const Dataset& data, const StudyOptions& options, int trial,
                       const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
  calibrate(config, graph, data, options.eval.threads);
  program(config, graph, models::ProgramContext{options.seed, static_cast<std::uint64_t>(trial)});
  for (LinearLayer* layer : graph.layers()) layer->measure_error(options.layer_errors);
  const EvalResult r = evaluate(graph, data, options.eval, on_progress);
  if (options.after_evaluate) options.after_evaluate();
  TrialOutcome out;
  out.trial = trial;
  out.accuracy = r.accuracy();
  out.images = r.count;
  for (int c = 0; c < data.classes; ++c) out.class_accuracy.push_back(r.class_accuracy(c));
  for (const LinearLayer* layer : graph.layers()) {
    const auto s = layer->error_stats();
    TrialOutcome::Layer l;
    l.error_sq = s.error_sq;
    l.signal_sq = s.signal_sq;
    l.count = static_cast<double>(s.count);
    l.counters = layer->counters();
    out.layers.push_back(std::move(l));
  }
  for (LinearLayer* layer : graph.layers()) layer->measure_error(false);
  return out;
}

StudyResult combine_trials(const Graph& graph, const HardwareConfig& config, const std::vector<TrialOutcome>& trials, int classes) {
  if (trials.empty()) throw Error("combine_trials: no trials");
  StudyResult result;
  result.hardware = config.name;
  const std::size_t nl = graph.layers().size();
  result.layers.resize(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    const LinearLayer& layer = *graph.layers()[l];
    const hwcfg::HardwareUnit* unit = unit_for(config, layer);
    result.layers[l].name = layer.name();
    result.layers[l].op_type = layer.op_type();
    result.layers[l].unit = unit ? unit->name : "-";
    result.layers[l].kind = unit ? unit->kind : models::exact_kind_name();
  }
  const double n = static_cast<double>(trials.size());
  result.class_accuracy.assign(static_cast<std::size_t>(classes), 0.0);
  std::vector<TrialOutcome::Layer> errors(nl);
  for (const TrialOutcome& t : trials) {
    result.accuracies.push_back(t.accuracy);
    result.images = t.images;
    for (int c = 0; c < classes && c < static_cast<int>(t.class_accuracy.size()); ++c) result.class_accuracy[c] += t.class_accuracy[c] / n;
    for (std::size_t l = 0; l < nl && l < t.layers.size(); ++l) {
      errors[l].error_sq += t.layers[l].error_sq;
      errors[l].signal_sq += t.layers[l].signal_sq;
      errors[l].count += t.layers[l].count;
      for (const auto& [key, value] : t.layers[l].counters) result.layers[l].counters[key] += value;
    }
  }
  double sum = 0;
  for (double a : result.accuracies) sum += a;
  result.mean = sum / n;
  double sq = 0;
  for (double a : result.accuracies) sq += (a - result.mean) * (a - result.mean);
  const int count = static_cast<int>(trials.size());
  result.stddev = count > 1 ? std::sqrt(sq / (n - 1)) : 0.0;
  const double half = count > 1 ? student_t95(count - 1) * result.stddev / std::sqrt(n) : 0.0;
  // Student-t interval of the mean accuracy over the trials, clipped to [0, 1]: with few trials
  // the t interval alone can pass 100 % (found by the hostile-input review, issue 12).
  result.ci_low = std::max(0.0, result.mean - half);
  result.ci_high = std::min(1.0, result.mean + half);
  for (std::size_t l = 0; l < nl; ++l) {
    const auto& e = errors[l];
    result.layers[l].rms_error = e.count > 0 ? std::sqrt(e.error_sq / e.count) : 0.0;
    result.layers[l].snr_db = e.error_sq > 0 ? 10.0 * models::det::log(e.signal_sq / e.error_sq) / models::det::log(10.0) : std::numeric_limits<double>::infinity();
  }
  return result;
}

StudyResult run_study(Graph& graph, const HardwareConfig& config, const Dataset& data, const StudyOptions& options,
                      const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
  if (options.trials < 1 || options.trials > 1000000) throw Error("--trials: must be between 1 and 1000000");
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t total = options.eval.limit > 0 ? std::min(options.eval.limit, data.count) : data.count;
  std::vector<TrialOutcome> trials;
  for (int t = 0; t < options.trials; ++t)
    trials.push_back(run_trial(graph, config, data, options, t, [&](std::int64_t done, std::int64_t) {
      if (on_progress) on_progress(t * total + done, options.trials * total);
    }));
  StudyResult result = combine_trials(graph, config, trials, data.classes);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string study_table(const StudyResult& r, bool verbose) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "hardware %s: accuracy %.2f %% ± %.2f (std, %zu trial%s), 95 %% CI [%.2f, %.2f] %%\n", r.hardware.c_str(),
                100 * r.mean, 100 * r.stddev, r.accuracies.size(), r.accuracies.size() == 1 ? "" : "s", 100 * r.ci_low, 100 * r.ci_high);
  out << line;
  // Within 100 columns: the counters that matter for the layer's kind (every counter with
  // `verbose`), wrapped under the counters column.
  constexpr std::size_t kWidth = 100;
  // The units' kinds once, so that the layer rows have room for the counters.
  std::vector<std::string> units;
  std::string kinds;
  for (const auto& l : r.layers)
    if (std::find(units.begin(), units.end(), l.unit) == units.end()) {
      units.push_back(l.unit);
      kinds += (kinds.empty() ? "" : ", ") + l.unit + " (" + l.kind + ")";
    }
  out << "units: " << kinds << "\n";
  std::snprintf(line, sizeof line, "%-12s %-6s %-10s %10s %7s  %s\n", "layer", "op", "unit", "rms error", "snr dB",
                verbose ? "counters (summed over trials)" : "main counters (--verbose: all)");
  out << line;
  for (const auto& l : r.layers) {
    std::vector<std::string> names;
    if (verbose) {
      for (const auto& entry : l.counters) names.push_back(entry.first);
    } else if (const models::SubstrateKind* kind = models::find_substrate_kind(l.kind)) {
      for (const auto& n : kind->summary_counters)
        if (l.counters.count(n)) names.push_back(n);
    }
    char snr[32];
    if (std::isinf(l.snr_db)) std::snprintf(snr, sizeof snr, "exact");
    else std::snprintf(snr, sizeof snr, "%.2f", l.snr_db);
    std::snprintf(line, sizeof line, "%-12s %-6s %-10s %10.4g %7s  ", l.name.c_str(), l.op_type.c_str(), l.unit.c_str(), l.rms_error, snr);
    std::string text = line;
    const std::size_t indent = 12 + 1 + 6 + 1 + 10 + 1 + 10 + 1 + 7 + 2;
    std::size_t column = text.size();
    bool first = true;
    for (const auto& n : names) {
      char c[128];
      std::snprintf(c, sizeof c, "%s=%.4g", n.c_str(), l.counters.at(n));
      const std::size_t add = std::strlen(c) + (first ? 0 : 1);
      if (!first && column + add > kWidth) {
        text += "\n" + std::string(indent, ' ');
        column = indent;
        first = true;
      }
      text += (first ? "" : " ") + std::string(c);
      column += std::strlen(c) + (first ? 0 : 1);
      first = false;
    }
    out << text << "\n";
  }
  return out.str();
}

std::string study_timing_table(const StudyResult& r) {
  bool any = false;
  for (const auto& l : r.layers) any = any || l.counters.count("cycles") != 0;
  if (!any) return "";
  const double trials = static_cast<double>(std::max<std::size_t>(1, r.accuracies.size()));
  const double images = static_cast<double>(std::max<std::int64_t>(1, r.images));
  const auto get = [](const LayerReport& l, const char* key) {
    auto it = l.counters.find(key);
    return it == l.counters.end() ? 0.0 : it->second;
  };
  std::ostringstream out;
  char line[512];
  bool energy_model = false;
  for (const auto& l : r.layers) energy_model = energy_model || l.counters.count("energy_pj") != 0;
  std::snprintf(line, sizeof line, "timing (%s), per pass over %lld images (mean of %g trial%s):\n",
                energy_model ? "cycle level" : "RTL level: cycles of the RTL clock, no energy model", static_cast<long long>(r.images), trials,
                trials == 1 ? "" : "s");
  out << line;
  // Within 100 columns.
  std::snprintf(line, sizeof line, "%-12s %-8s %11s %11s %11s %10s %8s %10s %10s\n", "layer", "unit", "cycles", "time us", "energy uJ", "nJ/image",
                "util %", "prog. us", "prog. uJ");
  out << line;
  double cycles = 0, time = 0, energy = 0, macs = 0, peak = 0, ptime = 0, penergy = 0;
  for (const auto& l : r.layers) {
    if (!l.counters.count("cycles")) {
      std::snprintf(line, sizeof line, "%-12s %-8s %11s\n", l.name.c_str(), l.unit.c_str(), "untimed (host)");
      out << line;
      continue;
    }
    const double c = get(l, "cycles") / trials, t = get(l, "time_ns") / trials, e = get(l, "energy_pj") / trials;
    const double m = get(l, "macs"), p = get(l, "peak_macs");
    const double pt = get(l, "program_time_ns") / trials, pe = get(l, "program_energy_pj") / trials;
    cycles += c;
    time += t;
    energy += e;
    macs += m;
    peak += p;
    ptime += pt;
    penergy += pe;
    std::snprintf(line, sizeof line, "%-12s %-8s %11.0f %11.4g %11.4g %10.4g %8.2f %10.4g %10.4g\n", l.name.c_str(), l.unit.c_str(), c, t / 1e3,
                  e / 1e6, e / images / 1e3, p > 0 ? 100 * m / p : 0.0, pt / 1e3, pe / 1e6);
    out << line;
  }
  std::snprintf(line, sizeof line, "%-12s %-8s %11.0f %11.4g %11.4g %10.4g %8.2f %10.4g %10.4g\n", "total", "", cycles, time / 1e3,
                energy / 1e6, energy / images / 1e3, peak > 0 ? 100 * macs / peak : 0.0, ptime / 1e3, penergy / 1e6);
  out << line;
  return out.str();
}

std::string study_json(const StudyResult& r, const std::string& model, const std::string& data, const StudyOptions& options) {
  JsonWriter j;
  j.begin_object();
  j.key("model").value(model);
  j.key("data").value(data);
  j.key("preprocessing");
  options.data_preprocessing.write_json(j);
  j.key("hardware").value(r.hardware);
  j.key("level").value(options.level);
  j.key("seed").value(static_cast<unsigned long long>(options.seed));
  j.key("trials").value(static_cast<int>(r.accuracies.size()));
  j.key("images").value(static_cast<long long>(r.images));
  j.key("accuracy").begin_object();
  j.key("mean").value(r.mean);
  j.key("std").value(r.stddev);
  j.key("ci95").begin_array().value(r.ci_low).value(r.ci_high).end_array();
  j.key("trials").begin_array();
  for (double a : r.accuracies) j.value(a);
  j.end_array();
  j.end_object();
  j.key("class_accuracy").begin_array();
  for (double a : r.class_accuracy) j.value(a);
  j.end_array();
  // The cycle level's totals per pass over the images (the table's last row), when it ran.
  bool timed = false;
  for (const auto& l : r.layers) timed = timed || l.counters.count("cycles") != 0;
  if (timed) {
    const double trials = static_cast<double>(std::max<std::size_t>(1, r.accuracies.size()));
    std::map<std::string, double> total;
    for (const auto& l : r.layers)
      for (const char* key : {"cycles", "time_ns", "energy_pj", "macs", "peak_macs", "program_cycles", "program_time_ns", "program_energy_pj"}) {
        const auto it = l.counters.find(key);
        if (it != l.counters.end()) total[key] += it->second / trials;
      }
    j.key("cycle_level_per_pass").begin_object();
    for (const auto& [k, v] : total) j.key(k).value(v);
    j.key("utilisation").value(total["peak_macs"] > 0 ? total["macs"] / total["peak_macs"] : 0.0);
    j.end_object();
  }
  j.key("layers").begin_array();
  for (const auto& l : r.layers) {
    j.begin_object();
    j.key("name").value(l.name);
    j.key("op").value(l.op_type);
    j.key("unit").value(l.unit);
    j.key("kind").value(l.kind);
    j.key("rms_error").value(l.rms_error);
    j.key("snr_db").value(l.snr_db);  // null when the layer is exact
    j.key("counters").begin_object();
    for (const auto& [k, v] : l.counters) j.key(k).value(v);
    j.end_object();
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace faultline::studies
