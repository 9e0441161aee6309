// `noisy`: the Walking Noise operators on a layer's output (Borras, Klein, Fröning, "Walking
// Noise", arXiv 2212.10430): additive y + N(0, σ_add), multiplicative y · N(1, σ_mul), or both,
// resampled on every forward pass.
#include "models/noise.h"
#include "models/philox.h"
#include "models/substrate.h"

namespace faultline::models {
namespace {

struct NoisyConfig {
  double sigma_add = 0, sigma_mul = 0;
};

class NoisySubstrate final : public Substrate {
 public:
  explicit NoisySubstrate(const NoisyConfig& c) : sigma_add_(static_cast<float>(c.sigma_add)), sigma_mul_(static_cast<float>(c.sigma_mul)) {}

  void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) override {
    weights_ = weights;
    layer_ = layer;
    context_ = context;
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    y.noalias() = x * weights_.transpose();
    add_noise(y, context);
  }

  // The noise lands on the exact product, so it is at hand for error measurement.
  bool multiply_keeping_exact(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, Eigen::Ref<MatrixRM> exact,
                              const MultiplyContext& context) const override {
    exact.noalias() = x * weights_.transpose();
    y = exact;
    add_noise(y, context);
    return true;
  }

  std::string kind() const override { return "noisy"; }  // (its registered name, below)
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

 private:
  void add_noise(Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const {
    const CounterRng rng(context_.seed, stream_id(context_.trial, layer_.index, layer_.part, Purpose::OutputNoise));
    const std::uint64_t first = context.first_row * static_cast<std::uint64_t>(y.cols());
    // Element (r, c) has global index (first_row + r)·cols + c: consecutive rows are consecutive
    // indices, so a contiguous y takes its noise in one vectorized pass.
    if (y.outerStride() == y.cols()) {
      apply_noise(rng, first, sigma_add_, sigma_mul_, y.data(), y.size());
    } else {
      for (Eigen::Index r = 0; r < y.rows(); ++r)
        apply_noise(rng, first + static_cast<std::uint64_t>(r * y.cols()), sigma_add_, sigma_mul_, y.row(r).data(), y.cols());
    }
  }

  float sigma_add_, sigma_mul_;
  MatrixRM weights_;
  LayerInfo layer_;
  ProgramContext context_;
};

SubstrateKind noisy_kind() {
  ParamTable<NoisyConfig> table;
  table.number("sigma_add", &NoisyConfig::sigma_add, 0.0, 1e10, "", "standard deviation of additive Gaussian noise (Walking Noise sweeps 1e-2..1e10)")
      .number("sigma_mul", &NoisyConfig::sigma_mul, 0.0, 1e10, "", "standard deviation of multiplicative Gaussian noise N(1, sigma)");
  SubstrateKind k = typed_kind("noisy",
                               "Exact product, then Walking Noise on every output: y·N(1, sigma_mul) + N(0, sigma_add), resampled per pass "
                               "(Borras, Klein, Froening, arXiv 2212.10430).",
                               table, NoisyConfig{}, [](const NoisyConfig& c) { return std::make_unique<NoisySubstrate>(c); });
  k.capabilities.training_noise = true;
  return k;
}

}  // namespace

FAULTLINE_REGISTER_KIND(noisy, noisy_kind)

}  // namespace faultline::models
