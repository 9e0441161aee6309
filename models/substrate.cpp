#include "models/substrate.h"

#include <mutex>

#include "models/cycle_params.h"
#include "models/error.h"

namespace faultline::models {

void IdealSubstrate::program(const MatrixRM& weights, const LayerInfo&, const ProgramContext&) {
  weights_ = weights;
}

void IdealSubstrate::multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y,
                              const MultiplyContext&) const {
  y.noalias() = x * weights_.transpose();
}

SubstrateKind ideal_kind() {
  return {"ideal", "Exact float32 products (Eigen): the reference.", {},
          [](const Params&) { return std::make_unique<IdealSubstrate>(); }};
}

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, SubstrateKind> kinds;
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry;
    for (SubstrateKind k : {ideal_kind(), noisy_kind(), int8_digital_kind(), rram_memory_kind(), analog_crossbar_kind(),
                            analog_mac_kind(), trace_noise_kind()}) {
      attach_cycle_params(k);
      r->kinds[k.name] = std::move(k);
    }
    return r;
  }();
  return *instance;
}

}  // namespace

void register_substrate(SubstrateKind kind) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.kinds[kind.name] = std::move(kind);
}

const SubstrateKind* find_substrate_kind(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.kinds.find(name);
  return it == r.kinds.end() ? nullptr : &it->second;
}

bool substrate_registered(const std::string& kind) { return find_substrate_kind(kind) != nullptr; }

std::vector<std::string> registered_substrates() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> kinds;
  for (const auto& entry : r.kinds) kinds.push_back(entry.first);
  return kinds;
}

std::unique_ptr<Substrate> create_substrate(const std::string& kind, const Params& params) {
  const SubstrateKind* k = find_substrate_kind(kind);
  if (k == nullptr) {
    std::string known;
    for (const auto& name : registered_substrates()) known += (known.empty() ? "" : ", ") + name;
    throw Error("unknown substrate kind '" + kind + "' (known: " + known + ")");
  }
  return k->create(params);
}

std::unique_ptr<Substrate> create_substrate(const std::string& kind) {
  const SubstrateKind* k = find_substrate_kind(kind);
  if (k == nullptr) return create_substrate(kind, Params{});
  return k->create(default_params(k->params));
}

}  // namespace faultline::models
