// Fitting a noise model to a trace, and writing it as a hardware description of `trace_noise`
// units (models/trace_noise.h) that replays the traced noise at the functional level.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "models/trace_noise.h"
#include "hwcfg/hardware_config.h"
#include "nn/json.h"
#include "traces/trace.h"

namespace faultline::traces {
namespace {

std::string unit_name(const std::string& layer) {
  std::string name = "noise_";
  for (char c : layer) name += std::isalnum(static_cast<unsigned char>(c)) || c == '_' ? c : '_';
  return name;
}

// Empirical quantile with linear interpolation between order statistics (Hyndman & Fan type 7,
// numpy's default).
double quantile(const std::vector<double>& sorted, double p) {
  const double h = (static_cast<double>(sorted.size()) - 1) * p;
  const std::size_t lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(sorted.size() - 1, lo + 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

LayerFit fit_layer(const LayerTrace& t) {
  LayerFit f;
  f.layer = t.name;
  f.op = t.op;
  const std::size_t n = t.ideal.size();
  f.samples = n;
  double sum = 0, sq = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const double e = static_cast<double>(t.hardware[k]) - t.ideal[k];
    sum += e;
    sq += e * e;
  }
  f.mean_error = n ? sum / static_cast<double>(n) : 0;
  f.rms_error = n ? std::sqrt(sq / static_cast<double>(n)) : 0;
  if (n == 0 || sq == 0) {
    f.exact = true;
    return f;
  }
  // Equal-count bins of |y|: in each, the mean |y| and the error's standard deviation.
  std::vector<std::size_t> order(n);
  for (std::size_t k = 0; k < n; ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const float ya = std::fabs(t.ideal[a]), yb = std::fabs(t.ideal[b]);
    return ya < yb || (ya == yb && a < b);
  });
  const std::size_t bins = std::max<std::size_t>(1, std::min<std::size_t>(20, n / 50));
  std::vector<double> m(bins), s(bins);
  for (std::size_t b = 0; b < bins; ++b) {
    const std::size_t lo = b * n / bins, hi = (b + 1) * n / bins;
    double my = 0, me = 0, me2 = 0;
    for (std::size_t k = lo; k < hi; ++k) {
      const std::size_t i = order[k];
      const double e = static_cast<double>(t.hardware[i]) - t.ideal[i];
      my += std::fabs(t.ideal[i]);
      me += e;
      me2 += e * e;
    }
    const double cnt = static_cast<double>(hi - lo);
    m[b] = my / cnt;
    s[b] = std::sqrt(std::max(0.0, me2 / cnt - (me / cnt) * (me / cnt)));
  }
  // Least squares s ≈ a + b·m with a, b ≥ 0.
  double sm = 0, ss = 0, smm = 0, sms = 0;
  for (std::size_t b = 0; b < bins; ++b) {
    sm += m[b];
    ss += s[b];
    smm += m[b] * m[b];
    sms += m[b] * s[b];
  }
  const double nb = static_cast<double>(bins), det = nb * smm - sm * sm;
  double a = ss / nb, slope = 0;
  if (det > 0) {
    slope = (nb * sms - sm * ss) / det;
    a = (ss - slope * sm) / nb;
  }
  if (slope < 0) {
    slope = 0;
    a = ss / nb;
  }
  if (a < 0) {
    a = 0;
    slope = smm > 0 ? sms / smm : 0;
  }
  if (a == 0 && slope == 0) a = f.rms_error;  // degenerate (a constant bias only): keep the scale
  f.sigma_offset = a;
  f.sigma_slope = slope;
  // Quantiles of the normalised error.
  std::vector<double> z;
  z.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double sigma = a + slope * std::fabs(t.ideal[k]);
    const double e = static_cast<double>(t.hardware[k]) - t.ideal[k];
    if (sigma > 0) z.push_back(e / sigma);
  }
  std::sort(z.begin(), z.end());
  for (std::size_t q = 0; q < f.quantiles.size(); ++q)
    f.quantiles[q] = z.empty() ? 0.0 : quantile(z, models::kTraceQuantileProbabilities[q]);
  return f;
}

std::string fitted_hwcfg_yaml(const std::vector<LayerFit>& fits, const TraceMeta& meta, const std::string& shape) {
  std::ostringstream out;
  out.precision(9);
  out << "# Noise fitted by `faultline trace` from a trace of " << meta.model << " on " << meta.hardware << " (" << meta.hardware_source
      << "), level " << meta.level << ", seed " << meta.seed << ", " << meta.images << " images; traced accuracy " << meta.accuracy << ".\n"
      << "# Per layer: y + sigma(y)*z, sigma(y) = sigma_offset + sigma_slope*|y|, z from the traced quantiles (shape: quantiles)\n"
      << "# or standard normal (shape: gaussian). Layers the trace found exact are not mapped (they run ideal).\n";
  out << "name: noise_from_trace\n";
  out << "description: " << YAML::Node("Noise fitted from a trace of " + meta.hardware + " (" + meta.level + " level)") << "\n";
  out << "units:\n";
  bool any = false;
  for (const auto& f : fits) {
    if (f.exact) continue;
    any = true;
    out << "  " << unit_name(f.layer) << ":  # traced rms error " << f.rms_error << ", mean error " << f.mean_error << ", " << f.samples
        << " samples\n";
    out << "    kind: trace_noise\n    shape: " << shape << "\n";
    out << "    sigma_offset: " << f.sigma_offset << "\n    sigma_slope: " << f.sigma_slope << "\n";
    for (std::size_t q = 0; q < f.quantiles.size(); ++q) out << "    " << models::trace_quantile_param(q) << ": " << f.quantiles[q] << "\n";
  }
  if (!any) out << "  {}\n";
  out << "mapping:\n";
  if (!any) out << "  []\n";
  for (const auto& f : fits) {
    if (f.exact) continue;
    out << "  - layers: " << YAML::Node(hwcfg::glob_literal(f.layer)) << "\n    unit: " << unit_name(f.layer) << "\n";
  }
  return out.str();
}

std::string fits_json(const std::vector<LayerFit>& fits, const TraceMeta& meta) {
  nn::JsonWriter j;
  j.begin_object();
  j.key("faultline_noise_fit").value(1);
  j.key("model").value(meta.model);
  j.key("hardware").value(meta.hardware);
  j.key("level").value(meta.level);
  j.key("traced_accuracy").value(meta.accuracy);
  j.key("model_of_error").value("e = sigma(y) * z, sigma(y) = sigma_offset + sigma_slope * |y|, z from quantiles at probabilities");
  j.key("probabilities").begin_array();
  for (double p : models::kTraceQuantileProbabilities) j.value(p);
  j.end_array();
  j.key("layers").begin_array();
  for (const auto& f : fits) {
    j.begin_object();
    j.key("name").value(f.layer);
    j.key("op").value(f.op);
    j.key("exact").value(f.exact);
    j.key("sigma_offset").value(f.sigma_offset);
    j.key("sigma_slope").value(f.sigma_slope);
    j.key("quantiles").begin_array();
    for (double q : f.quantiles) j.value(q);
    j.end_array();
    j.key("rms_error").value(f.rms_error);
    j.key("mean_error").value(f.mean_error);
    j.key("samples").value(static_cast<unsigned long long>(f.samples));
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace faultline::traces
