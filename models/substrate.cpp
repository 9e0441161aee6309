#include "models/substrate.h"

#include <map>
#include <mutex>

#include "models/error.h"

namespace faultline::models {

void IdealSubstrate::program(const MatrixRM& weights, const LayerInfo&, const ProgramContext&) {
  weights_ = weights;
}

void IdealSubstrate::multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                              const MultiplyContext&) const {
  y.noalias() = x * weights_.transpose();
}

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, SubstrateFactory> factories;
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry;
    r->factories["ideal"] = [] { return std::make_unique<IdealSubstrate>(); };
    return r;
  }();
  return *instance;
}

}  // namespace

void register_substrate(const std::string& kind, SubstrateFactory factory) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[kind] = std::move(factory);
}

bool substrate_registered(const std::string& kind) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.factories.count(kind) != 0;
}

std::vector<std::string> registered_substrates() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> kinds;
  for (const auto& entry : r.factories) kinds.push_back(entry.first);
  return kinds;
}

std::unique_ptr<Substrate> create_substrate(const std::string& kind) {
  SubstrateFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(kind);
    if (it == r.factories.end()) {
      std::string known;
      for (const auto& entry : r.factories) known += (known.empty() ? "" : ", ") + entry.first;
      throw Error("unknown substrate kind '" + kind + "' (known: " + known + ")");
    }
    factory = it->second;
  }
  return factory();
}

}  // namespace faultline::models
