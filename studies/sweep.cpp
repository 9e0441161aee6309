#include "studies/sweep.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "models/det_math.h"
#include "models/error.h"
#include "models/files.h"
#include "models/philox.h"
#include "nn/json.h"

namespace faultline::studies {
namespace {

// Random stream of the midpoints' bootstrap resampling (plus the layer's position), apart from
// every hardware-noise stream (models/substrate.h stream_id keeps trials below 2^24).
constexpr std::uint64_t kMidpointBootstrapStream = 0x6D69'6470'0000'0000ull;

std::string format_double(double v) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

double parse_double(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(v)) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Error(what + ": '" + text + "' is not a finite number");
  }
}

long long parse_integer(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Error(what + ": '" + text + "' is not an integer");
  }
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string current;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  parts.push_back(current);
  return parts;
}

// 64-bit FNV-1a of a file's bytes: the log's header names the model by content, so that a
// retrained model at the same path is not mistaken for the one the log was written with.
std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::uint64_t h = 0xcbf29ce484222325ull;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    for (std::streamsize k = 0; k < in.gcount(); ++k) {
      h ^= static_cast<unsigned char>(buffer[k]);
      h *= 0x100000001b3ull;
    }
  }
  char text[20];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

std::string header_line(const SweepOptions& o) {
  JsonWriter j;
  j.begin_object();
  j.key("faultline_sweep").value(1);
  // The model by content (a path may differ between two starts of the same sweep).
  j.key("model_fnv1a").value(file_fingerprint(o.model));
  j.key("data").value(o.data);
  // Only when not the default, so that logs written before preprocessing existed still resume.
  if (!o.study.data_preprocessing.is_default()) {
    j.key("preprocessing");
    o.study.data_preprocessing.write_json(j);
  }
  j.key("hw").value(o.hw);
  j.key("sets").begin_array();
  for (const auto& s : o.sets) j.value(s);
  j.end_array();
  j.key("axes").begin_array();
  for (const auto& a : o.axes) {
    j.begin_object().key("path").value(a.path).key("values").begin_array();
    for (const auto& v : a.values) j.value(v);
    j.end_array().end_object();
  }
  j.end_array();
  j.key("walking").value(o.walking);
  if (!o.walking.empty()) {
    j.key("sigma").value(o.sigma);
    j.key("layers").value(o.layers);
    j.key("tolerance").value(o.tolerance);
    j.key("max_bisections").value(o.max_bisections);
  }
  j.key("trials").value(o.study.trials);
  j.key("seed").value(static_cast<unsigned long long>(o.study.seed));
  j.key("limit").value(static_cast<long long>(o.study.eval.limit));
  j.key("layer_errors").value(o.study.layer_errors);
  j.end_object();
  return j.str();
}

void write_row_fields(JsonWriter& j, const SweepRow& r) {
  j.key("row").value(r.index);
  j.key("key").value(r.key);
  j.key("role").value(r.role);
  j.key("values").begin_array();
  for (const auto& v : r.values) j.value(v);
  j.end_array();
  j.key("layer").value(r.layer);
  j.key("sigma").value(r.sigma);
  j.key("hardware").value(r.result.hardware);
  j.key("images").value(static_cast<long long>(r.result.images));
  j.key("accuracy").begin_object();
  j.key("mean").value(r.result.mean);
  j.key("std").value(r.result.stddev);
  j.key("ci95").begin_array().value(r.result.ci_low).value(r.result.ci_high).end_array();
  j.key("trials").begin_array();
  for (double a : r.result.accuracies) j.value(a);
  j.end_array();
  j.end_object();
  j.key("layers").begin_array();
  for (const auto& l : r.result.layers) {
    j.begin_object();
    j.key("name").value(l.name);
    j.key("unit").value(l.unit);
    j.key("kind").value(l.kind);
    j.key("rms_error").value(l.rms_error);
    j.key("snr_db").value(l.snr_db);
    j.end_object();
  }
  j.end_array();
}

std::string row_line(const SweepRow& r) {
  JsonWriter j;
  j.begin_object();
  write_row_fields(j, r);
  j.end_object();
  return j.str();
}


}  // namespace

SweepRow parse_sweep_row(const std::string& line, const std::string& path, int line_number) {
  const std::string where = path + ":" + std::to_string(line_number);
  SweepRow r;
  try {
    const nn::JsonValue n = nn::parse_json(line, path, line_number);
    if (n.type != nn::JsonValue::Type::Object) throw Error(where + ": not a sweep row (not a JSON object)");
    const std::int64_t index = n.at("row").int64("row");
    if (index < 0 || index > std::numeric_limits<int>::max()) throw Error(n.at("row").where() + ": 'row' out of range");
    r.index = static_cast<int>(index);
    r.key = n.at("key").string("key");
    r.role = n.at("role").string("role");
    for (const auto& v : n.at("values").array("values")) r.values.push_back(v.string("values[]"));
    r.layer = n.at("layer").string("layer");
    r.sigma = n.at("sigma").number("sigma");
    r.result.hardware = n.at("hardware").string("hardware");
    r.result.images = n.at("images").int64("images");
    const nn::JsonValue& a = n.at("accuracy");
    r.result.mean = a.at("mean").number("mean");
    r.result.stddev = a.at("std").number("std");
    const auto& ci = a.at("ci95").array("ci95");
    if (ci.size() != 2) throw Error(a.at("ci95").where() + ": 'ci95' must hold 2 numbers");
    r.result.ci_low = ci[0].number("ci95");
    r.result.ci_high = ci[1].number("ci95");
    for (const auto& t : a.at("trials").array("trials")) r.result.accuracies.push_back(t.number("trials[]"));
    for (const auto& l : n.at("layers").array("layers")) {
      LayerReport lr;
      lr.name = l.at("name").string("name");
      lr.unit = l.at("unit").string("unit");
      lr.kind = l.at("kind").string("kind");
      lr.rms_error = l.at("rms_error").number("rms_error");
      const nn::JsonValue& snr = l.at("snr_db");
      lr.snr_db = snr.is_null() ? std::numeric_limits<double>::infinity() : snr.number("snr_db");
      r.result.layers.push_back(lr);
    }
  } catch (const Error& e) {
    const std::string message = e.what();
    throw Error(message.rfind(where, 0) == 0 ? message : where + ": " + message);
  }
  return r;
}

namespace {

// A point to evaluate: its key, role and how to build its hardware description.
struct Point {
  std::string key, role;
  std::vector<std::string> values;  // grid
  std::string layer;                // walking
  double sigma = 0;
};

class SweepEngine {
 public:
  SweepEngine(Graph& graph, const Dataset& data, const SweepOptions& o, TaskRunner& runner,
              const std::function<void(const SweepRow&, bool)>& on_row)
      : graph_(graph), data_(data), o_(o), runner_(runner), on_row_(on_row) {
    base_ = hwcfg::load_hardware_config(o.hw, o.sets);
    log_path_ = o.out.empty() ? "" : o.out + ".jsonl";
    header_ = header_line(o);
  }
  // Reads (or starts) the log: after every point was validated, so that a bad command leaves no file.
  void open_log() {
    if (!log_path_.empty()) read_log();
  }

  // Evaluates `points` (taking those the log has from it) and returns their rows, in order.
  std::vector<SweepRow> evaluate(const std::vector<Point>& points) {
    std::vector<SweepRow> out(points.size());
    // Points the log already has come first (the log is a prefix of this run's request order).
    std::size_t p = 0;
    for (; p < points.size() && next_row_ < logged_.size(); ++p, ++next_row_) {
      const SweepRow& logged = logged_[next_row_];
      if (logged.key != points[p].key)
        throw Error(log_path_ + ": row " + std::to_string(next_row_) + " is point '" + logged.key + "', this sweep asks for '" +
                    points[p].key + "' there (the log was written by a different sweep; remove it or choose another output prefix)");
      out[p] = logged;
      ++resumed_;
      if (runner_.writer() && on_row_) on_row_(out[p], true);
      report_progress();
    }
    const std::size_t first_new = p;
    if (first_new == points.size()) return out;
    // The rest: every (point, trial) is a task; the runner spreads them. Points go in chunks of
    // one per process (every rank gets the same number of trials), and each chunk's rows are
    // logged as soon as it finishes.
    const std::size_t trials = static_cast<std::size_t>(o_.study.trials);
    const std::size_t chunk = static_cast<std::size_t>(std::max(1, runner_.ranks()));
    for (std::size_t begin = first_new; begin < points.size(); begin += chunk) {
      const std::size_t end = std::min(points.size(), begin + chunk);
      std::vector<HardwareConfig> configs;
      for (std::size_t q = begin; q < end; ++q) configs.push_back(config_for(points[q]));
      const std::vector<TrialOutcome> outcomes = runner_.run(configs.size() * trials, [&](std::size_t k) {
        return run_trial(graph_, configs[k / trials], data_, o_.study, static_cast<int>(k % trials));
      });
      for (std::size_t q = begin; q < end; ++q) {
        const std::size_t c = q - begin;
        const std::vector<TrialOutcome> mine(outcomes.begin() + static_cast<std::ptrdiff_t>(c * trials),
                                             outcomes.begin() + static_cast<std::ptrdiff_t>((c + 1) * trials));
        SweepRow row;
        row.index = static_cast<int>(next_row_++);
        row.key = points[q].key;
        row.role = points[q].role;
        row.values = points[q].values;
        row.layer = points[q].layer;
        row.sigma = points[q].sigma;
        row.result = combine_trials(graph_, configs[c], mine, data_.classes);
        ++evaluated_;
        if (runner_.writer()) {
          append(row_line(row));
          if (on_row_) on_row_(row, false);
        }
        report_progress();
        out[q] = std::move(row);
      }
    }
    return out;
  }

  HardwareConfig config_for(const Point& p) const {
    if (p.role == "grid") {
      std::vector<std::string> sets = o_.sets;
      for (std::size_t a = 0; a < o_.axes.size(); ++a) sets.push_back(o_.axes[a].path + "=" + p.values[a]);
      return hwcfg::load_hardware_config(o_.hw, sets);
    }
    HardwareConfig c = base_;
    if (p.role == "clean") return c;
    hwcfg::NoiseSite site;
    site.nodes = hwcfg::glob_literal(p.layer);
    const float s = static_cast<float>(p.sigma);
    if (o_.walking == "additive" || o_.walking == "combined") site.sigma_add = s;
    if (o_.walking == "multiplicative" || o_.walking == "combined") site.sigma_mul = s;
    c.noise_sites.insert(c.noise_sites.begin(), site);  // first match wins: it overrides a base site on this node
    c.name = base_.name + " + " + o_.walking + " noise at " + p.layer;
    return c;
  }

  int resumed() const { return resumed_; }
  // The rows this sweep will have when it ends (as far as known now), for progress reports.
  void plan_rows(std::int64_t rows) { planned_ = rows; }
  void report_progress() {
    ++done_;
    if (runner_.writer() && on_progress_) on_progress_(done_, std::max(planned_, done_));
  }
  std::function<void(std::int64_t, std::int64_t)> on_progress_;
  int evaluated() const { return evaluated_; }
  const std::string& header() const { return header_; }

 private:
  void read_log() {
    if (!std::filesystem::exists(log_path_)) {
      if (runner_.writer()) write_fresh();
      return;
    }
    std::string text;
    {
      std::ifstream in(log_path_, std::ios::binary);
      if (!in) throw Error(log_path_ + ": cannot open for reading");
      std::ostringstream s;
      s << in.rdbuf();
      text = s.str();
    }
    // A line without its newline was cut off by a kill: drop it.
    const std::size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    text.resize(complete);
    std::vector<std::string> lines = split(text, '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    if (lines.empty()) {
      if (runner_.writer()) write_fresh();
      return;
    }
    if (lines[0] != header_)
      throw Error(log_path_ + ": written by a different sweep (its first line differs from this command's settings); remove it or choose another output prefix");
    for (std::size_t k = 1; k < lines.size(); ++k) {
      SweepRow r = parse_sweep_row(lines[k], log_path_, static_cast<int>(k + 1));
      if (r.index != static_cast<int>(k - 1)) throw Error(log_path_ + ":" + std::to_string(k + 1) + ": row " + std::to_string(r.index) + " out of order");
      logged_.push_back(std::move(r));
    }
    if (runner_.writer()) {
      std::filesystem::resize_file(log_path_, complete);
    }
  }
  void write_fresh() {
    std::ofstream out(log_path_, std::ios::trunc | std::ios::binary);
    if (!out) throw Error(log_path_ + ": cannot open for writing");
    out << header_ << "\n";
    if (!out.flush()) throw Error(log_path_ + ": write failed");
  }
  void append(const std::string& line) {
    if (log_path_.empty()) return;
    std::ofstream out(log_path_, std::ios::app | std::ios::binary);
    if (!out) throw Error(log_path_ + ": cannot open for appending");
    out << line << "\n";
    if (!out.flush()) throw Error(log_path_ + ": write failed");
  }

  Graph& graph_;
  const Dataset& data_;
  const SweepOptions& o_;
  TaskRunner& runner_;
  std::int64_t planned_ = 0, done_ = 0;
  std::function<void(const SweepRow&, bool)> on_row_;
  HardwareConfig base_;
  std::string log_path_, header_;
  std::vector<SweepRow> logged_;
  std::size_t next_row_ = 0;
  int resumed_ = 0, evaluated_ = 0;
};

// log σ at which the line through (log s0, a0) and (log s1, a1) reaches `target`.
double interpolate_sigma(double s0, double a0, double s1, double a1, double target) {
  if (a0 == a1) return std::sqrt(s0 * s1);
  const double t = (a0 - target) / (a0 - a1);
  return models::det::exp(models::det::log(s0) + std::clamp(t, 0.0, 1.0) * (models::det::log(s1) - models::det::log(s0)));
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void write_file(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

std::string csv_text(const SweepOutcome& r, const SweepOptions& o) {
  std::ostringstream out;
  out << "row,role";
  for (const auto& a : o.axes) out << "," << csv_field(a.path);
  out << ",layer,sigma,accuracy_mean,accuracy_std,ci95_low,ci95_high,trials,images";
  if (!r.rows.empty())
    for (const auto& l : r.rows[0].result.layers) out << "," << csv_field("rms_error:" + l.name) << "," << csv_field("snr_db:" + l.name);
  out << "\n";
  for (const auto& row : r.rows) {
    out << row.index << "," << row.role;
    for (std::size_t a = 0; a < o.axes.size(); ++a) out << "," << csv_field(a < row.values.size() ? row.values[a] : "");
    out << "," << csv_field(row.layer) << "," << format_double(row.sigma) << "," << format_double(row.result.mean) << ","
        << format_double(row.result.stddev) << "," << format_double(row.result.ci_low) << "," << format_double(row.result.ci_high) << ","
        << row.result.accuracies.size() << "," << row.result.images;
    for (const auto& l : row.result.layers)
      out << "," << format_double(l.rms_error) << "," << (std::isinf(l.snr_db) ? std::string("inf") : format_double(l.snr_db));
    out << "\n";
  }
  return out.str();
}

std::string midpoints_csv(const SweepOutcome& r) {
  std::ostringstream out;
  // midpoint_ci_*: the 95 % percentile bootstrap interval (empty with one trial; 0 or inf where it is
  // open beyond the evaluated sigmas).
  out << "layer,found,midpoint_sigma,midpoint_ci_low,midpoint_ci_high,bootstrap_replicates,from_sweep_sigma,sigma_lo,sigma_hi,bisections,"
         "clean_accuracy,chance,target,note\n";
  const auto bound = [](double v) { return std::isinf(v) ? std::string("inf") : format_double(v); };
  for (const auto& m : r.midpoints)
    out << csv_field(m.layer) << "," << (m.found ? 1 : 0) << "," << (m.found ? format_double(m.midpoint) : "") << ","
        << (m.ci_available ? bound(m.ci_low) : "") << "," << (m.ci_available ? bound(m.ci_high) : "") << ","
        << (m.ci_available ? std::to_string(m.replicates) : "") << ","
        << (m.found ? format_double(m.from_sweep) : "") << "," << (m.found ? format_double(m.sigma_lo) : "") << ","
        << (m.found ? format_double(m.sigma_hi) : "") << "," << m.bisections << "," << format_double(r.clean_accuracy) << ","
        << format_double(r.chance) << "," << format_double(r.target) << "," << csv_field(m.why) << "\n";
  return out.str();
}

std::string json_text(const SweepOutcome& r, const SweepOptions& o, const std::string& header) {
  JsonWriter j;
  j.begin_object();
  j.key("kind").value(o.walking.empty() ? "grid" : "walking_noise");
  j.key("model").value(o.model);
  j.key("settings").raw(header);
  if (!o.walking.empty()) {
    j.key("walking_noise").begin_object();
    j.key("mode").value(o.walking);
    j.key("clean_accuracy").value(r.clean_accuracy);
    j.key("chance").value(r.chance);
    j.key("target").value(r.target);
    j.key("tolerance").value(o.tolerance);
    j.key("midpoints").begin_array();
    for (const auto& m : r.midpoints) {
      j.begin_object();
      j.key("layer").value(m.layer);
      j.key("found").value(m.found);
      if (m.found) {
        j.key("midpoint").value(m.midpoint);
        j.key("from_sweep").value(m.from_sweep);
        j.key("sigma_lo").value(m.sigma_lo);
        j.key("sigma_hi").value(m.sigma_hi);
        if (m.ci_available) {
          // [low, high]; null where the interval is open beyond the evaluated sigmas.
          j.key("midpoint_ci").begin_array();
          if (m.ci_low > 0) j.value(m.ci_low);
          else j.raw("null");
          if (std::isinf(m.ci_high)) j.raw("null");
          else j.value(m.ci_high);
          j.end_array();
          j.key("bootstrap_replicates").value(m.replicates);
        }
      } else {
        j.key("why").value(m.why);
      }
      j.key("bisections").value(m.bisections);
      j.end_object();
    }
    j.end_array();
    j.end_object();
  }
  j.key("rows").begin_array();
  for (const auto& row : r.rows) {
    j.begin_object();
    write_row_fields(j, row);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace

double crossing_midpoint(const std::vector<double>& sigmas, const std::vector<double>& accuracies, double target) {
  for (std::size_t j = 0; j < sigmas.size(); ++j)
    if (accuracies[j] < target) return j == 0 ? 0.0 : interpolate_sigma(sigmas[j - 1], accuracies[j - 1], sigmas[j], accuracies[j], target);
  return std::numeric_limits<double>::infinity();
}

MidpointInterval bootstrap_midpoint(const std::vector<double>& sigmas, const std::vector<std::vector<double>>& trials, const std::vector<double>& clean,
                                    double chance, int replicates, std::uint64_t seed, std::uint64_t stream) {
  const std::size_t n = clean.size();
  if (n < 2 || replicates < 1 || trials.size() != sigmas.size()) throw Error("bootstrap_midpoint: needs at least 2 trials and one row per sigma");
  for (const auto& t : trials)
    if (t.size() != n) throw Error("bootstrap_midpoint: every point needs as many trials as the clean one");
  const models::CounterRng rng(seed, stream);
  std::vector<double> weight(n), means(sigmas.size()), found(static_cast<std::size_t>(replicates));
  for (int b = 0; b < replicates; ++b) {
    std::fill(weight.begin(), weight.end(), 0.0);
    for (std::size_t k = 0; k < n; ++k) weight[rng.below(static_cast<std::uint64_t>(b) * n + k, static_cast<std::uint32_t>(n))] += 1.0;
    // Means summed in trial order as run_study sums them.
    const auto mean = [&](const std::vector<double>& a) {
      double sum = 0;
      for (std::size_t t = 0; t < n; ++t) sum += weight[t] * a[t];
      return sum / static_cast<double>(n);
    };
    for (std::size_t p = 0; p < sigmas.size(); ++p) means[p] = mean(trials[p]);
    found[static_cast<std::size_t>(b)] = crossing_midpoint(sigmas, means, 0.5 * (mean(clean) + chance));
  }
  std::sort(found.begin(), found.end());
  // Percentiles 2.5 and 97.5 by rank (the outer ranks, so that the interval never shrinks below
  // 95 % coverage by rounding).
  const double last = static_cast<double>(replicates - 1);
  MidpointInterval out;
  out.low = found[static_cast<std::size_t>(std::floor(0.025 * last))];
  out.high = found[static_cast<std::size_t>(std::ceil(0.975 * last))];
  out.replicates = replicates;
  return out;
}

std::vector<double> parse_number_range(const std::string& spec, const std::string& option) {
  const std::vector<std::string> parts = split(spec, ':');
  std::vector<double> values;
  if (parts.size() == 4 && (parts[0] == "log" || parts[0] == "lin")) {
    const double a = parse_double(parts[1], option), b = parse_double(parts[2], option);
    const long long n = parse_integer(parts[3], option);
    if (n < 1 || n > 100000) throw Error(option + ": '" + spec + "': the number of points must be in [1, 100000]");
    if (parts[0] == "log" && !(a > 0 && b > 0)) throw Error(option + ": '" + spec + "': log ranges need positive ends");
    for (long long k = 0; k < n; ++k) {
      const double t = n == 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(n - 1);
      values.push_back(parts[0] == "log" ? models::det::exp(models::det::log(a) + t * (models::det::log(b) - models::det::log(a))) : a + t * (b - a));
    }
    return values;
  }
  if (parts.size() != 1) throw Error(option + ": '" + spec + "': expected log:A:B:N, lin:A:B:N or a list a,b,c");
  for (const auto& v : split(spec, ',')) values.push_back(parse_double(v, option));
  return values;
}

SweepAxis parse_sweep_axis(const std::string& spec, const std::string& option) {
  const auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    throw Error(option + " '" + spec + "': expected PATH=SPEC (e.g. units.xbar.adc_bits=4:8 or units.noise.sigma_add=log:1e-3:1e2:25)");
  SweepAxis axis;
  axis.path = spec.substr(0, eq);
  const std::string range = spec.substr(eq + 1);
  const std::vector<std::string> parts = split(range, ':');
  const std::string what = option + " " + axis.path;
  if (parts.size() == 4 && (parts[0] == "log" || parts[0] == "lin")) {
    for (double v : parse_number_range(range, what)) axis.values.push_back(format_double(v));
  } else if (parts.size() == 2) {
    const long long a = parse_integer(parts[0], what), b = parse_integer(parts[1], what);
    if (b < a) throw Error(what + ": '" + range + "': the range is empty (A:B needs A ≤ B)");
    if (b - a > 100000) throw Error(what + ": '" + range + "': more than 100000 values");
    for (long long v = a; v <= b; ++v) axis.values.push_back(std::to_string(v));
  } else if (parts.size() == 1) {
    for (const auto& v : split(range, ',')) {
      if (v.empty()) throw Error(what + ": '" + range + "': empty value in the list");
      axis.values.push_back(v);
    }
  } else {
    throw Error(what + ": '" + range + "': expected A:B, lin:A:B:N, log:A:B:N or a list a,b,c");
  }
  return axis;
}

std::vector<TrialOutcome> LocalRunner::run(std::size_t count, const std::function<TrialOutcome(std::size_t)>& task) {
  std::vector<TrialOutcome> out;
  out.reserve(count);
  for (std::size_t k = 0; k < count; ++k) out.push_back(task(k));
  return out;
}

namespace {
void put_bytes(std::string& s, const void* p, std::size_t n) { s.append(static_cast<const char*>(p), n); }
void put_u64(std::string& s, std::uint64_t v) { put_bytes(s, &v, sizeof v); }
void put_double(std::string& s, double v) { put_bytes(s, &v, sizeof v); }
void put_string(std::string& s, const std::string& v) {
  put_u64(s, v.size());
  s += v;
}
struct Reader {
  const std::string& s;
  std::size_t at = 0;
  void get(void* p, std::size_t n) {
    if (at + n > s.size()) throw Error("deserialize_trial: truncated message");
    std::memcpy(p, s.data() + at, n);
    at += n;
  }
  std::uint64_t u64() {
    std::uint64_t v;
    get(&v, sizeof v);
    return v;
  }
  double f64() {
    double v;
    get(&v, sizeof v);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (at + n > s.size()) throw Error("deserialize_trial: truncated message");
    std::string v = s.substr(at, n);
    at += n;
    return v;
  }
};
}  // namespace

std::string serialize_trial(const TrialOutcome& t) {
  std::string s;
  put_u64(s, static_cast<std::uint64_t>(t.trial));
  put_double(s, t.accuracy);
  put_u64(s, static_cast<std::uint64_t>(t.images));
  put_u64(s, t.class_accuracy.size());
  for (double a : t.class_accuracy) put_double(s, a);
  put_u64(s, t.layers.size());
  for (const auto& l : t.layers) {
    put_double(s, l.error_sq);
    put_double(s, l.signal_sq);
    put_double(s, l.count);
    put_u64(s, l.counters.size());
    for (const auto& [k, v] : l.counters) {
      put_string(s, k);
      put_double(s, v);
    }
  }
  return s;
}

TrialOutcome deserialize_trial(const std::string& bytes) {
  Reader r{bytes};
  TrialOutcome t;
  t.trial = static_cast<int>(r.u64());
  t.accuracy = r.f64();
  t.images = static_cast<std::int64_t>(r.u64());
  const std::uint64_t classes = r.u64();
  for (std::uint64_t c = 0; c < classes; ++c) t.class_accuracy.push_back(r.f64());
  const std::uint64_t layers = r.u64();
  for (std::uint64_t l = 0; l < layers; ++l) {
    TrialOutcome::Layer layer;
    layer.error_sq = r.f64();
    layer.signal_sq = r.f64();
    layer.count = r.f64();
    const std::uint64_t counters = r.u64();
    for (std::uint64_t k = 0; k < counters; ++k) {
      std::string key = r.str();
      layer.counters[key] = r.f64();
    }
    t.layers.push_back(std::move(layer));
  }
  return t;
}

SweepOutcome run_sweep(Graph& graph, const Dataset& data, const SweepOptions& o, TaskRunner& runner,
                       const std::function<void(const SweepRow&, bool)>& on_row,
                       const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
  if (o.study.trials < 1 || o.study.trials > 100000) throw Error("trials: must be between 1 and 100000");
  if (!o.walking.empty() && o.walking != "additive" && o.walking != "multiplicative" && o.walking != "combined")
    throw Error("walking: must be additive, multiplicative or combined, got '" + o.walking + "'");
  if (o.walking.empty() && o.axes.empty()) throw Error("sweep, walking: give grid axes (PATH=SPEC) or a Walking Noise mode");
  if (!o.walking.empty() && !o.axes.empty()) throw Error("sweep, walking: choose one mode");
  if (!(o.tolerance > 0 && o.tolerance <= 10)) throw Error("tolerance: must be in (0, 10]");
  if (o.max_bisections < 0 || o.max_bisections > 60) throw Error("max_bisections: must be in [0, 60]");
  SweepOutcome result;
  // Every grid point's description is validated before any work.
  std::vector<Point> points;
  if (o.walking.empty()) {
    std::size_t total = 1;
    for (const auto& a : o.axes) {
      total *= a.values.size();
      if (total > 1000000) throw Error("sweep: more than 1000000 grid points");
    }
    for (std::size_t k = 0; k < total; ++k) {
      Point p;
      p.role = "grid";
      std::size_t rest = k;
      p.values.resize(o.axes.size());
      for (std::size_t a = o.axes.size(); a-- > 0;) {
        p.values[a] = o.axes[a].values[rest % o.axes[a].values.size()];
        rest /= o.axes[a].values.size();
      }
      p.key = "grid";
      for (std::size_t a = 0; a < o.axes.size(); ++a) p.key += " " + o.axes[a].path + "=" + p.values[a];
      points.push_back(p);
    }
  }
  SweepEngine engine(graph, data, o, runner, on_row);
  engine.on_progress_ = on_progress;
  if (o.walking.empty()) {
    for (const auto& p : points) engine.config_for(p);  // throws on a bad value, naming the field
    engine.plan_rows(static_cast<std::int64_t>(points.size()));
    engine.open_log();
    result.rows = engine.evaluate(points);
  } else {
    const std::vector<double> sigmas = parse_number_range(o.sigma, "sigma");
    for (std::size_t k = 0; k < sigmas.size(); ++k)
      if (!(sigmas[k] > 0 && sigmas[k] <= 1e10) || (k > 0 && !(sigmas[k] > sigmas[k - 1])))
        throw Error("sigma: '" + o.sigma + "': values must be increasing and in (0, 1e10]");
    std::vector<std::string> layers;
    for (const LinearLayer* l : graph.layers())
      if (fnmatch(o.layers.c_str(), l->name().c_str(), 0) == 0) layers.push_back(l->name());
    if (layers.empty()) throw Error("layers: '" + o.layers + "' matches no linear layer of " + graph.source);
    engine.plan_rows(1 + static_cast<std::int64_t>(layers.size() * sigmas.size()));
    engine.open_log();
    Point clean;
    clean.key = "clean";
    clean.role = "clean";
    const SweepRow clean_row = engine.evaluate({clean})[0];
    result.rows.push_back(clean_row);
    result.clean_accuracy = clean_row.result.mean;
    result.chance = 1.0 / data.classes;
    result.target = 0.5 * (result.clean_accuracy + result.chance);
    std::vector<Point> grid;
    for (const auto& layer : layers)
      for (double s : sigmas) {
        Point p;
        p.role = "sweep";
        p.layer = layer;
        p.sigma = s;
        p.key = "sweep layer=" + layer + " sigma=" + format_double(s);
        grid.push_back(p);
      }
    const std::vector<SweepRow> swept = engine.evaluate(grid);
    result.rows.insert(result.rows.end(), swept.begin(), swept.end());
    // Bracket each layer's crossing of the target on the sweep.
    struct Bracket {
      double lo, acc_lo, hi, acc_hi;
    };
    std::vector<Bracket> brackets(layers.size());
    std::vector<bool> active(layers.size(), false);
    for (std::size_t l = 0; l < layers.size(); ++l) {
      LayerMidpoint m;
      m.layer = layers[l];
      const SweepRow* row = &swept[l * sigmas.size()];
      if (row[0].result.mean < result.target) {
        m.why = "accuracy is already below the target at the smallest sigma";
      } else {
        std::size_t i = 0;
        while (i + 1 < sigmas.size() && !(row[i + 1].result.mean < result.target)) ++i;
        if (i + 1 == sigmas.size()) {
          m.why = "accuracy stays above the target up to the largest sigma";
        } else {
          m.found = true;
          brackets[l] = {row[i].sigma, row[i].result.mean, row[i + 1].sigma, row[i + 1].result.mean};
          m.from_sweep = interpolate_sigma(row[i].sigma, row[i].result.mean, row[i + 1].sigma, row[i + 1].result.mean, result.target);
          active[l] = true;
        }
      }
      result.midpoints.push_back(m);
    }
    // Each bisection halves log(hi/lo): a layer needs ceil(log2(log(hi/lo) / log(1 + tolerance)))
    // rounds (at most max_bisections), so the number of rows is known from here on.
    std::int64_t bisections = 0;
    for (std::size_t l = 0; l < layers.size(); ++l)
      if (active[l]) {
        const double ratio = std::log(brackets[l].hi / brackets[l].lo) / std::log1p(o.tolerance);
        if (ratio > 1) bisections += std::min<std::int64_t>(o.max_bisections, static_cast<std::int64_t>(std::ceil(std::log2(ratio))));
      }
    engine.plan_rows(1 + static_cast<std::int64_t>(layers.size() * sigmas.size()) + bisections);
    // Bisection in log σ, all layers' steps of a round evaluated as one batch.
    for (;;) {
      std::vector<Point> round;
      std::vector<std::size_t> which;
      for (std::size_t l = 0; l < layers.size(); ++l) {
        if (!active[l]) continue;
        if (brackets[l].hi / brackets[l].lo <= 1 + o.tolerance || result.midpoints[l].bisections >= o.max_bisections) {
          active[l] = false;
          continue;
        }
        Point p;
        p.role = "bisect";
        p.layer = layers[l];
        p.sigma = std::sqrt(brackets[l].lo * brackets[l].hi);
        p.key = "bisect layer=" + layers[l] + " sigma=" + format_double(p.sigma);
        round.push_back(p);
        which.push_back(l);
      }
      if (round.empty()) break;
      const std::vector<SweepRow> rows = engine.evaluate(round);
      for (std::size_t k = 0; k < rows.size(); ++k) {
        Bracket& b = brackets[which[k]];
        if (rows[k].result.mean >= result.target) b = {rows[k].sigma, rows[k].result.mean, b.hi, b.acc_hi};
        else b = {b.lo, b.acc_lo, rows[k].sigma, rows[k].result.mean};
        ++result.midpoints[which[k]].bisections;
        result.rows.push_back(rows[k]);
      }
    }
    for (std::size_t l = 0; l < layers.size(); ++l) {
      LayerMidpoint& m = result.midpoints[l];
      if (!m.found) continue;
      m.sigma_lo = brackets[l].lo;
      m.sigma_hi = brackets[l].hi;
      m.midpoint = interpolate_sigma(brackets[l].lo, brackets[l].acc_lo, brackets[l].hi, brackets[l].acc_hi, result.target);
      // The interval from every point evaluated on this layer (sweep and bisection).
      if (o.study.trials < 2) continue;
      std::vector<const SweepRow*> evaluated;
      for (const SweepRow& row : result.rows)
        if (row.layer == m.layer && (row.role == "sweep" || row.role == "bisect")) evaluated.push_back(&row);
      std::sort(evaluated.begin(), evaluated.end(), [](const SweepRow* a, const SweepRow* b) { return a->sigma < b->sigma; });
      std::vector<double> layer_sigmas;
      std::vector<std::vector<double>> trials;
      bool complete = result.rows[0].result.accuracies.size() == static_cast<std::size_t>(o.study.trials);
      for (const SweepRow* row : evaluated) {
        layer_sigmas.push_back(row->sigma);
        trials.push_back(row->result.accuracies);
        complete = complete && row->result.accuracies.size() == static_cast<std::size_t>(o.study.trials);
      }
      if (!complete) continue;
      // Stream: the layer's position, in a range of its own (kMidpointBootstrapStream).
      const MidpointInterval ci = bootstrap_midpoint(layer_sigmas, trials, result.rows[0].result.accuracies, result.chance, kMidpointBootstrapReplicates,
                                                     o.study.seed, kMidpointBootstrapStream + l);
      m.ci_available = true;
      m.ci_low = ci.low;
      m.ci_high = ci.high;
      m.replicates = ci.replicates;
    }
  }
  result.resumed_rows = engine.resumed();
  result.evaluated_rows = engine.evaluated();
  if (runner.writer() && !o.out.empty()) {
    write_file(o.out + ".csv", csv_text(result, o));
    if (!o.walking.empty()) write_file(o.out + ".midpoints.csv", midpoints_csv(result));
    write_file(o.out + ".json", json_text(result, o, engine.header()));
  }
  return result;
}

std::string sweep_json(const SweepOutcome& outcome, const SweepOptions& options) {
  return json_text(outcome, options, header_line(options));
}

namespace {
// The evaluated sigma range of a layer (where an open interval ends).
double smallest_sigma(const SweepOutcome& r, const std::string& layer) {
  double s = std::numeric_limits<double>::infinity();
  for (const auto& row : r.rows)
    if (row.layer == layer) s = std::min(s, row.sigma);
  return s;
}
double largest_sigma(const SweepOutcome& r, const std::string& layer) {
  double s = 0;
  for (const auto& row : r.rows)
    if (row.layer == layer) s = std::max(s, row.sigma);
  return s;
}
}  // namespace

std::string sweep_table(const SweepOutcome& r, const SweepOptions& o) {
  std::ostringstream out;
  char line[512];
  if (o.walking.empty()) {
    for (const auto& a : o.axes) out << a.path << "  ";
    out << "accuracy (mean ± std, 95 % CI)\n";
    for (const auto& row : r.rows) {
      for (std::size_t a = 0; a < o.axes.size(); ++a) {
        std::snprintf(line, sizeof line, "%-*s  ", static_cast<int>(o.axes[a].path.size()), row.values[a].c_str());
        out << line;
      }
      std::snprintf(line, sizeof line, "%7.2f %% ± %5.2f   [%6.2f, %6.2f] %%\n", 100 * row.result.mean, 100 * row.result.stddev,
                    100 * row.result.ci_low, 100 * row.result.ci_high);
      out << line;
    }
    return out.str();
  }
  std::snprintf(line, sizeof line, "Walking Noise (%s): clean accuracy %.2f %%, chance %.2f %%, target (halfway) %.2f %%\n", o.walking.c_str(),
                100 * r.clean_accuracy, 100 * r.chance, 100 * r.target);
  out << line;
  for (const auto& m : r.midpoints) {
    out << "layer " << m.layer << ":\n";
    for (const auto& row : r.rows) {
      if (row.layer != m.layer || row.role != "sweep") continue;
      std::snprintf(line, sizeof line, "  sigma %12.4g  accuracy %7.2f %% ± %5.2f\n", row.sigma, 100 * row.result.mean, 100 * row.result.stddev);
      out << line;
    }
  }
  // At most 100 columns (Cli.OutputFitsOneHundredColumns).
  std::snprintf(line, sizeof line, "%-16s %10s %24s %10s %23s %7s\n", "layer", "midpoint", "95 % CI (bootstrap)", "from sweep", "final bracket",
                "bisect.");
  out << line;
  for (const auto& m : r.midpoints) {
    char ci[64] = "-";
    if (m.ci_available) {
      char lo[24], hi[24];
      if (m.ci_low > 0) std::snprintf(lo, sizeof lo, "%.5g", m.ci_low);
      else std::snprintf(lo, sizeof lo, "<%.4g", smallest_sigma(r, m.layer));
      if (!std::isinf(m.ci_high)) std::snprintf(hi, sizeof hi, "%.5g", m.ci_high);
      else std::snprintf(hi, sizeof hi, ">%.4g", largest_sigma(r, m.layer));
      std::snprintf(ci, sizeof ci, "[%s, %s]", lo, hi);
    }
    if (m.found)
      std::snprintf(line, sizeof line, "%-16s %10.5g %24s %10.5g %1s[%9.5g, %9.5g] %7d\n", m.layer.c_str(), m.midpoint, ci, m.from_sweep, "", m.sigma_lo,
                    m.sigma_hi, m.bisections);
    else
      std::snprintf(line, sizeof line, "%-16s %10s  (%s)\n", m.layer.c_str(), "-", m.why.c_str());
    out << line;
  }
  std::snprintf(line, sizeof line, "(midpoint sigma; bisection to sigma_hi/sigma_lo <= %.3g; each accuracy is the mean of %d trial(s))\n",
                1 + o.tolerance, o.study.trials);
  out << line;
  if (o.study.trials >= 2) {
    std::snprintf(line, sizeof line, "(CI: percentile bootstrap, the trials resampled at every evaluated sigma, %d replicates)\n",
                  kMidpointBootstrapReplicates);
    out << line;
  }
  return out.str();
}

}  // namespace faultline::studies
