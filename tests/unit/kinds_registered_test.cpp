// Every hardware kind, cycle model and RTL binding the sources register (found by the build from
// their FAULTLINE_REGISTER_* macros, tests/CMakeLists.txt) is registered in this test program
// and in the `faultline` program: self-registration survives static linking. Built twice: with
// the NN engine alone (kinds) and with the simulation levels (kinds, cycle models, RTL bindings).
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include "models/eigen_blocking.h"
#include "models/substrate.h"
#ifdef FAULTLINE_WITH_SIM
#include "sim/cycle_level.h"
#include "sim/rtl_level.h"
#endif

namespace {

std::set<std::string> split(const std::string& list) {
  std::set<std::string> out;
  std::stringstream s(list);
  for (std::string item; std::getline(s, item, ',');)
    if (!item.empty()) out.insert(item);
  return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

using namespace faultline;

TEST(Kinds, EveryRegisteredKindIsInThisProgram) {
  const std::set<std::string> expected = split(FAULTLINE_EXPECTED_KINDS);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(as_set(models::registered_substrates()), expected);
}

TEST(Kinds, EveryKindsDeclarationIsUsable) {
  for (const auto& name : models::registered_substrates()) {
    const models::SubstrateKind* kind = models::find_substrate_kind(name);
    ASSERT_NE(kind, nullptr);
    EXPECT_FALSE(kind->doc.empty()) << name;
    EXPECT_EQ(kind->capabilities.cycle_model, !kind->timing.empty()) << name << ": a cycle model has timing parameters, and only it";
    for (const auto& p : kind->params) EXPECT_FALSE(p.doc.empty()) << name << "." << p.name;
    // Built from its defaults, a substrate reports the kind it was registered as.
    EXPECT_EQ(models::create_substrate(name)->kind(), name);
  }
}

TEST(Kinds, EveryKindIsInTheFaultlineProgram) {
  FILE* pipe = ::popen((std::string(FAULTLINE_BINARY) + " hw kinds").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0);
  std::set<std::string> listed;
  std::stringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("### `", 0) == 0) listed.insert(line.substr(5, line.size() - 6));
  EXPECT_EQ(listed, split(FAULTLINE_EXPECTED_KINDS));
}

// The other half of "linked whole": models/'s static initializer fixed Eigen's blocking before
// main, so products are the same bits whatever this machine's caches are.
TEST(Reproducibility, EigenBlockingIsFixedBeforeMain) { EXPECT_TRUE(models::eigen_blocking_is_fixed()); }

#ifdef FAULTLINE_WITH_SIM
TEST(Kinds, CycleModelsAndRtlBindingsAreRegisteredForTheKindsThatDeclareThem) {
  EXPECT_EQ(as_set(sim::cycle_model_kinds()), split(FAULTLINE_EXPECTED_CYCLE_MODELS));
  EXPECT_EQ(as_set(sim::rtl_binding_kinds()), split(FAULTLINE_EXPECTED_RTL_BINDINGS));
  std::set<std::string> declared_cycle, declared_rtl;
  for (const auto& name : models::registered_substrates()) {
    const models::KindCapabilities& c = models::find_substrate_kind(name)->capabilities;
    if (c.cycle_model) declared_cycle.insert(name);
    if (c.rtl_binding) declared_rtl.insert(name);
  }
  EXPECT_EQ(as_set(sim::cycle_model_kinds()), declared_cycle);
  EXPECT_EQ(as_set(sim::rtl_binding_kinds()), declared_rtl);
}
#endif

}  // namespace
