// The one interface every piece of hardware implements (DESIGN.md, "The one interface").
//
// A layer's linear algebra (Gemm, MatMul, Conv lowered to GEMM) is handed to a substrate that is
// programmed once with a weight matrix and then multiplies many times. `program` is where
// writing a crossbar or filling a memory happens (programming noise, stuck cells, weight
// quantization: once per Monte Carlo trial); `multiply` is a read (read noise, DAC/ADC, ordering
// effects: every call).
//
// Conventions: weights are W (outputs × inputs); multiply computes Y = X · Wᵀ with one input
// vector per row of X (rows × inputs) and one output vector per row of Y (rows × outputs). A row
// is what a crossbar sees in one read, so row-major storage keeps each vector contiguous.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace faultline::models {

using MatrixRM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// What a substrate knows about the layer it holds. `index` is the layer's position among the
// graph's substrate layers; it is part of every random-number key so that draws do not depend on
// evaluation order (DESIGN.md, "Randomness and reproducibility").
struct LayerInfo {
  std::string name;
  std::string op_type;
  int index = 0;
};

// Identifies one Monte Carlo trial: programming happens once per trial.
struct ProgramContext {
  std::uint64_t seed = 0;
  std::uint64_t trial = 0;
};

// Identifies one read. `first_row` is the global index of X's first row within the current pass
// over the data, so that a row's noise is the same however the batch was split across threads.
struct MultiplyContext {
  std::uint64_t first_row = 0;
};

class Substrate {
 public:
  virtual ~Substrate() = default;

  // Stores `weights` (outputs × inputs) in the hardware. Called once per trial, before any
  // multiply; may be called again to re-program (a new trial).
  virtual void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) = 0;

  // y = x · Wᵀ as the hardware computes it. `y` has already been sized rows(x) × outputs.
  // Must be safe to call concurrently from several threads on distinct x/y.
  virtual void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                        const MultiplyContext& context) const = 0;

  // The registered kind ("ideal", ...).
  virtual std::string kind() const = 0;

  virtual Eigen::Index outputs() const = 0;
  virtual Eigen::Index inputs() const = 0;
};

// Exact float32 products with Eigen: the reference every imperfect substrate is compared with.
class IdealSubstrate final : public Substrate {
 public:
  void program(const MatrixRM& weights, const LayerInfo& layer, const ProgramContext& context) override;
  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                const MultiplyContext& context) const override;
  std::string kind() const override { return "ideal"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

 private:
  MatrixRM weights_;
};

// Kinds of hardware by name, so that a hardware description can select them and a new kind is
// one registration (DESIGN.md: "Adding a new kind of hardware").
using SubstrateFactory = std::function<std::unique_ptr<Substrate>()>;

void register_substrate(const std::string& kind, SubstrateFactory factory);
bool substrate_registered(const std::string& kind);
std::vector<std::string> registered_substrates();
// Throws faultline::Error naming the kind when it is not registered.
std::unique_ptr<Substrate> create_substrate(const std::string& kind);

}  // namespace faultline::models
