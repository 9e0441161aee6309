// `weight_variation`: weights stored with device-to-device variation, read exactly — the simplest
// model of analog weight storage that studies of non-ideal memories start from:
//  * multiplicative log-normal variation w·exp(θ), θ ~ N(0, lognormal_sigma²), fixed per trial
//    (the variation model of Long, She, Mukhopadhyay, "Design of Reliable DNN Accelerator with
//    Un-reliable ReRAM", DATE 2019);
//  * additive programming noise N(0, (additive_sigma·max|W|)²) relative to the layer's largest
//    weight, fixed per trial (the weight-noise form of Joshi et al., "Accurate deep neural network
//    inference using computational phase-change memory", Nat. Commun. 11, 2473, 2020);
//  * weights stuck at zero (open cells) at stuck_at_zero_rate (MNSIM's stuck-at rates: 0.1 %).
// Every draw is keyed by (seed, trial, layer, block, purpose) and the weight's index, so a trial's
// weights do not depend on evaluation order or thread count. The defaults are examples, not
// published operating points: set them from the device at hand.
#include <cmath>

#include "models/det_math.h"
#include "models/philox.h"
#include "models/substrate.h"

namespace faultline::models {
namespace {

struct WeightVariationConfig {
  double lognormal_sigma = 0.1, additive_sigma = 0.0, stuck_at_zero_rate = 0.0;
};

class WeightVariationSubstrate final : public Substrate {
 public:
  explicit WeightVariationSubstrate(const WeightVariationConfig& c) : config_(c) {}

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    const CounterRng variation(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::Variation));
    const CounterRng programming(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::ProgrammingNoise));
    const CounterRng stuck(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::Stuck));
    const double w_max = w.size() ? static_cast<double>(w.cwiseAbs().maxCoeff()) : 0.0;
    weights_.resize(w.rows(), w.cols());
    stuck_ = 0;
    for (Eigen::Index k = 0; k < w.size(); ++k) {
      const auto index = static_cast<std::uint64_t>(k);
      double v = static_cast<double>(w.data()[k]);
      if (config_.lognormal_sigma > 0) v *= det::exp(config_.lognormal_sigma * static_cast<double>(variation.normal(index)));
      if (config_.additive_sigma > 0) v += config_.additive_sigma * w_max * static_cast<double>(programming.normal(index));
      if (config_.stuck_at_zero_rate > 0 && stuck.uniform(index) < config_.stuck_at_zero_rate) {
        v = 0;
        ++stuck_;
      }
      weights_.data()[k] = static_cast<float>(v);
    }
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext&) const override {
    y.noalias() = x * weights_.transpose();
  }

  std::string kind() const override { return "weight_variation"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }
  void add_counters(std::map<std::string, double>& out) const override {
    out["weights"] += static_cast<double>(weights_.size());
    out["stuck_at_zero"] += static_cast<double>(stuck_);
  }

 private:
  WeightVariationConfig config_;
  MatrixRM weights_;
  std::uint64_t stuck_ = 0;
};

SubstrateKind weight_variation_kind() {
  using C = WeightVariationConfig;
  ParamTable<C> table;
  table.number("lognormal_sigma", &C::lognormal_sigma, 0.0, 10.0, "", "σ of θ in w·exp(θ), fixed per trial (Long et al., DATE 2019)")
      .number("additive_sigma", &C::additive_sigma, 0.0, 1e3, "max|W|",
              "σ of additive programming noise relative to the layer's largest weight (Joshi et al., Nat. Commun. 2020)")
      .number("stuck_at_zero_rate", &C::stuck_at_zero_rate, 0.0, 1.0, "", "fraction of weights stuck at zero (open cells; MNSIM: 0.001)");
  SubstrateKind k = typed_kind("weight_variation",
                               "Weights with device-to-device variation, read exactly: log-normal multiplicative variation, additive programming "
                               "noise relative to max|W| and stuck-at-zero weights, drawn once per trial.",
                               table, C{}, [](const C& c) { return std::make_unique<WeightVariationSubstrate>(c); });
  k.summary_counters = {"stuck_at_zero"};
  return k;
}

}  // namespace

FAULTLINE_REGISTER_KIND(weight_variation, weight_variation_kind)

}  // namespace faultline::models
