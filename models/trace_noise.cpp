#include "models/trace_noise.h"

#include <algorithm>
#include <cmath>

#include "models/error.h"
#include "models/philox.h"
#include "models/substrate.h"

namespace faultline::models {

const char* trace_quantile_param(std::size_t k) {
  static const char* names[] = {"q001", "q010", "q050", "q100", "q200", "q300", "q400", "q500",
                                "q600", "q700", "q800", "q900", "q950", "q990", "q999"};
  return names[k];
}

double trace_quantile_z(const std::array<double, 15>& q, double u) {
  const auto& p = kTraceQuantileProbabilities;
  if (u <= p.front()) return q.front();
  if (u >= p.back()) return q.back();
  const std::size_t k = static_cast<std::size_t>(std::upper_bound(p.begin(), p.end(), u) - p.begin());  // p[k-1] < u ≤ p[k]
  const double t = (u - p[k - 1]) / (p[k] - p[k - 1]);
  return q[k - 1] + t * (q[k] - q[k - 1]);
}

namespace {

struct TraceNoiseConfig {
  double sigma_offset = 0, sigma_slope = 0;
  std::string shape = "gaussian";
  // Standard-normal quantiles as the defaults, so that `shape: quantiles` without a table is the Gaussian.
  std::array<double, 15> quantiles = {-3.090232, -2.326348, -1.644854, -1.281552, -0.841621, -0.524401, -0.253347, 0.0,
                                      0.253347,  0.524401,  0.841621,  1.281552,  1.644854,  2.326348,  3.090232};
};

class TraceNoiseSubstrate final : public Substrate {
 public:
  explicit TraceNoiseSubstrate(const TraceNoiseConfig& c)
      : offset_(c.sigma_offset), slope_(c.sigma_slope), quantiles_(c.shape == "quantiles"), table_(c.quantiles) {
    // A quantile function never decreases: a table out of order is not a distribution.
    for (std::size_t k = 1; k < table_.size(); ++k)
      if (table_[k] < table_[k - 1])
        throw Error(std::string("trace_noise: quantile table out of order: '") + trace_quantile_param(k) + "' (" + std::to_string(table_[k]) +
                    ") is below '" + trace_quantile_param(k - 1) + "' (" + std::to_string(table_[k - 1]) + ")");
  }

  void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) override {
    weights_ = weights;
    layer_ = layer;
    context_ = context;
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    y.noalias() = x * weights_.transpose();
    const CounterRng rng(context_.seed, stream_id(context_.trial, layer_.index, layer_.part, Purpose::OutputNoise));
    const std::uint64_t cols = static_cast<std::uint64_t>(y.cols());
    for (Eigen::Index r = 0; r < y.rows(); ++r)
      for (Eigen::Index c = 0; c < y.cols(); ++c) {
        // Element (r, c) has the global index (first_row + r)·cols + c: independent of batching.
        const std::uint64_t index = (context.first_row + static_cast<std::uint64_t>(r)) * cols + static_cast<std::uint64_t>(c);
        const double v = y(r, c);
        const double sigma = offset_ + slope_ * std::fabs(v);
        const double z = quantiles_ ? trace_quantile_z(table_, rng.uniform(index)) : rng.normal(index);
        y(r, c) = static_cast<float>(v + sigma * z);
      }
  }

  std::string kind() const override { return "trace_noise"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

 private:
  double offset_, slope_;
  bool quantiles_;
  std::array<double, 15> table_{};
  MatrixRM weights_;
  LayerInfo layer_;
  ProgramContext context_;
};

SubstrateKind trace_noise_kind() {
  ParamTable<TraceNoiseConfig> table;
  table.number("sigma_offset", &TraceNoiseConfig::sigma_offset, 0.0, 1e10, "", "a of sigma(y) = a + b|y|: the error spread at y = 0 (fitted per layer)")
      .number("sigma_slope", &TraceNoiseConfig::sigma_slope, 0.0, 1e4, "", "b of sigma(y) = a + b|y|: the error spread per unit of |y| (fitted per layer)")
      .choice("shape", &TraceNoiseConfig::shape, {"gaussian", "quantiles"}, "distribution of z = e/sigma(y): standard normal, or the traced quantile table");
  for (std::size_t k = 0; k < kTraceQuantileProbabilities.size(); ++k)
    table.number(trace_quantile_param(k), &TraceNoiseConfig::quantiles, k, -1e6, 1e6, "",
                 "z = e/sigma(y) at probability " + std::to_string(kTraceQuantileProbabilities[k]) + " (traced; default: standard normal)");
  SubstrateKind kind = typed_kind("trace_noise",
                                  "Noise fitted from a noise trace (faultline trace): exact product plus sigma(y)*z, "
                                  "sigma(y) = sigma_offset + sigma_slope*|y|, z standard normal or from the traced quantile table.",
                                  table, TraceNoiseConfig{}, [](const TraceNoiseConfig& c) { return std::make_unique<TraceNoiseSubstrate>(c); });
  kind.capabilities.training_noise = true;
  return kind;
}

}  // namespace

FAULTLINE_REGISTER_KIND(trace_noise, trace_noise_kind)

}  // namespace faultline::models
