#include "models/substrate.h"

#include <stdexcept>

#include "models/error.h"
#include "models/named_registry.h"

namespace faultline::models {

namespace {
NamedRegistry<SubstrateKind>& registry() {
  static auto* instance = new NamedRegistry<SubstrateKind>("substrate kind");
  return *instance;
}
}  // namespace

void register_substrate(SubstrateKind kind) {
  const std::string name = kind.name;
  registry().add(name, std::move(kind));
}

KindRegistrar::KindRegistrar(const char* name, SubstrateKind (*make)()) {
  SubstrateKind kind = make();
  if (kind.name != name) throw std::logic_error(std::string("FAULTLINE_REGISTER_KIND(") + name + ", ...) registers a kind named '" + kind.name + "'");
  register_substrate(std::move(kind));
}

const SubstrateKind* find_substrate_kind(const std::string& name) { return registry().find(name); }

bool substrate_registered(const std::string& kind) { return find_substrate_kind(kind) != nullptr; }

std::vector<std::string> registered_substrates() { return registry().names(); }

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
