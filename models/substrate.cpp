#include "models/substrate.h"

#include <mutex>
#include <stdexcept>

#include "models/error.h"

namespace faultline::models {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, SubstrateKind> kinds;
};

Registry& registry() {
  // Never destroyed: kinds register from static initializers in any order, and may be looked up
  // from other static objects' destructors.
  static Registry* instance = new Registry;
  return *instance;
}

}  // namespace

void register_substrate(SubstrateKind kind) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  // Two files registering one name is a build mistake; keeping the first silently would hide it.
  if (r.kinds.count(kind.name)) throw std::logic_error("substrate kind '" + kind.name + "' registered twice");
  r.kinds[kind.name] = std::move(kind);
}

KindRegistrar::KindRegistrar(const char* name, SubstrateKind (*make)()) {
  SubstrateKind kind = make();
  if (kind.name != name) throw std::logic_error(std::string("FAULTLINE_REGISTER_KIND(") + name + ", ...) registers a kind named '" + kind.name + "'");
  register_substrate(std::move(kind));
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
