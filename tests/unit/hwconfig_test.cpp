#include <gtest/gtest.h>

#include "models/substrate.h"
#include "hwcfg/hardware_config.h"
#include "nn/train.h"
#include "nn/onnx_io.h"

using namespace faultline;

namespace {

std::string error_of(const std::string& yaml) {
  try {
    hwcfg::parse_hardware_config(yaml, "hw.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HardwareConfig, ShippedIdealPresetLoads) {
  auto c = hwcfg::load_hardware_config(std::string(FAULTLINE_SOURCE_DIR) + "/hwcfg/ideal.yaml");
  EXPECT_EQ(c.name, "ideal");
  ASSERT_EQ(c.units.size(), 1u);
  EXPECT_EQ(c.units[0].kind, "ideal");
}

TEST(HardwareConfig, ErrorsNameFileLineColumnAndField) {
  EXPECT_EQ(error_of("name: x\nunits:\n  a:\n    kind: ideal\n    bits: 4\n"),
            "hw.yaml:5:5: unknown field 'units.a.bits' (known: kind)");
  {
    // The list names every registered kind (whatever kinds this build has).
    std::string known;
    for (const auto& k : models::registered_substrates()) known += (known.empty() ? "" : ", ") + k;
    EXPECT_EQ(error_of("name: x\nunits:\n  a:\n    kind: memristor\n"), "hw.yaml:4:11: 'units.a.kind': unknown kind 'memristor' (known: " + known + ")");
  }
  EXPECT_EQ(error_of("name: x\nunits:\n  a:\n    kind: ideal\nmapping:\n  - unit: b\n"),
            "hw.yaml:6:11: 'mapping[0].unit': no unit named 'b'");
  EXPECT_EQ(error_of("name: x\nbogus: 1\n"), "hw.yaml:2:1: unknown field 'bogus' (known: description, mapping, name, noise, units)");
  EXPECT_NE(error_of("name: [unclosed\n").find("hw.yaml:"), std::string::npos);
  EXPECT_EQ(error_of("units: {}\n"), "hw.yaml: missing field 'name'");
  EXPECT_EQ(error_of("name: x\nmapping:\n  - op: Relu\n    unit: a\n"), "hw.yaml:3:9: 'mapping[0].op': must be Conv, Gemm or MatMul, got 'Relu'");
}

TEST(HardwareConfig, MappingByGlobAndOp) {
  auto c = hwcfg::parse_hardware_config(
      "name: x\nunits:\n  a:\n    kind: ideal\n  b:\n    kind: ideal\nmapping:\n  - layers: conv*\n    unit: a\n  - op: Gemm\n    unit: b\n",
      "hw.yaml");
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 1);
  auto g = nn::parse_onnx(net.to_onnx(), "m");
  std::vector<std::string> units;
  for (auto* layer : g->layers()) units.push_back(c.unit_for(layer->name(), layer->op_type()) ? c.unit_for(layer->name(), layer->op_type())->name : "-");
  EXPECT_EQ(units, (std::vector<std::string>{"a", "a", "b", "b", "b"}));
}

}  // namespace

// YAML is read strictly (hwcfg/yaml_document.h): what yaml-cpp alone would silently drop or hang on.
TEST(HardwareConfigYaml, RepeatedKeysSecondDocumentsAndStrayCommasAreErrors) {
  auto expect_error = [](const std::string& text, const std::string& needle) {
    try {
      hwcfg::parse_hardware_config(text, "t.yaml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "'" << needle << "' not in: " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("t.yaml", 0), 0u) << e.what();
    }
  };
  expect_error("name: a\nname: b\n", "t.yaml:2:1: key 'name' repeated (first at line 1)");
  expect_error("name: a\n---\nname: b\n", "second YAML document");
  for (const char* comma : {",", "- a\n,", "\"x\" ,", "{} ,", "&a ,", "&b,", "!t,", "[a] , b", "name: t\n, units: {}\n"}) expect_error(comma, "','");
  expect_error("name: t\nunits: " + std::string(100, '[') + std::string(100, ']') + "\n", "nested deeper than 64 levels");
  expect_error("- \r[\n,", "carriage return without a line feed");
  expect_error(std::string("\0,", 2), "control character 0x00");
  EXPECT_NO_THROW(hwcfg::parse_hardware_config("name: t\r\nunits: {}\r\n", "crlf.yaml"));
  // Commas where YAML allows them stay allowed: inside plain scalars, quotes, flow lists, comments, block scalars.
  EXPECT_NO_THROW(hwcfg::parse_hardware_config("name: t\ndescription: fast , cheap, small\nunits: {}\n", "ok.yaml"));
  EXPECT_NO_THROW(hwcfg::parse_hardware_config("name: t  # a, b\ndescription: \"a, b\"\nunits: {}\n", "ok.yaml"));
  EXPECT_NO_THROW(hwcfg::parse_hardware_config("name: t\ndescription: |\n  , first line\n  second\nunits: {}\n", "ok.yaml"));
  EXPECT_NO_THROW(hwcfg::parse_hardware_config("name: t\ndescription: 'it''s, fine'\nunits: {a: {kind: ideal}}\n", "ok.yaml"));
}

// to_yaml writes a description that reads back the same, whatever the names hold (found by
// fuzzing: a pattern with a quote broke the file, an empty unit list read back as null).
TEST(HardwareConfigYaml, WrittenDescriptionsReadBack) {
  const hwcfg::HardwareConfig c = hwcfg::parse_hardware_config(
      "name: \"odd: name\"\ndescription: \"quote \\\" and \\\\ and \\t tab\"\nunits:\n  \"u 1\":\n    kind: ideal\nmapping:\n  - layers: \"f\\\"c*\"\n    unit: \"u 1\"\n",
      "odd.yaml");
  const hwcfg::HardwareConfig again = hwcfg::parse_hardware_config(c.to_yaml(), "again.yaml");
  EXPECT_EQ(again.name, c.name);
  EXPECT_EQ(again.description, c.description);
  ASSERT_EQ(again.units.size(), 1u);
  EXPECT_EQ(again.units[0].name, "u 1");
  ASSERT_EQ(again.mapping.size(), 1u);
  EXPECT_EQ(again.mapping[0].layers, "f\"c*");
  const hwcfg::HardwareConfig empty = hwcfg::parse_hardware_config("name: e\n", "e.yaml");
  EXPECT_NO_THROW(hwcfg::parse_hardware_config(empty.to_yaml(), "e2.yaml"));
}
