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
