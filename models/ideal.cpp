// `ideal`: exact float32 products with Eigen, the reference every imperfect substrate is compared
// with and what unmapped layers run on.
#include "models/substrate.h"

namespace faultline::models {
namespace {

class IdealSubstrate final : public Substrate {
 public:
  void program(const MatrixRM& weights, const LayerInfo&, const ProgramContext&) override { weights_ = weights; }
  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext&) const override {
    y.noalias() = x * weights_.transpose();
  }
  bool multiply_keeping_exact(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, Eigen::Ref<MatrixRM> exact,
                              const MultiplyContext&) const override {
    exact.noalias() = x * weights_.transpose();
    y = exact;
    return true;
  }
  std::string kind() const override { return exact_kind_name(); }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

 private:
  MatrixRM weights_;
};

SubstrateKind ideal_kind() {
  SubstrateKind k;
  k.name = exact_kind_name();
  k.doc = "Exact float32 products (Eigen): the reference.";
  k.create = [](const Params&) { return make_exact_substrate(); };
  return k;
}

}  // namespace

const std::string& exact_kind_name() {
  static const std::string name = "ideal";
  return name;
}

std::unique_ptr<Substrate> make_exact_substrate() { return std::make_unique<IdealSubstrate>(); }

FAULTLINE_REGISTER_KIND(ideal, ideal_kind)

}  // namespace faultline::models
