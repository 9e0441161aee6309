// `faultline ipu plan`'s library (studies/ipu_plan.h): convolutions planned for batch x output
// positions, grouped layers planned as one product, the whole model's tile memory map adding up
// to the layers' weights, and the verdict when every layer fits alone but the model does not.
#include <gtest/gtest.h>

#include "hwcfg/hardware_config.h"
#include "nn/onnx_io.h"
#include "nn/train.h"
#include "studies/ipu_plan.h"

using namespace faultline;

TEST(IpuModelPlan, ConvolutionsGroupsAndTheMemoryMap) {
  nn::TrainableNetwork lenet("lenet5", 1, 28, 28, 10, 1);
  auto graph = nn::parse_onnx(lenet.to_onnx(), "lenet5");
  const hwcfg::HardwareConfig gc2 = hwcfg::load_hardware_config("ipu_gc2");
  const models::ipu::IpuUnitConfig c = models::ipu::IpuUnitConfig::table().read(gc2.units[0].params);
  const studies::IpuModelPlan plan = studies::plan_ipu_model(*graph, gc2);
  ASSERT_EQ(plan.layers.size(), 5u);
  EXPECT_EQ(plan.layers[0].rows_per_sample, 28u * 28u);  // conv1: padded 5 x 5 on 28 x 28
  EXPECT_EQ(plan.layers[1].rows_per_sample, 10u * 10u);  // conv2: 5 x 5 on 14 x 14
  EXPECT_EQ(plan.layers[0].plan.rows, c.batch * 28 * 28);
  EXPECT_EQ(plan.layers[2].rows_per_sample, 1u);
  // Resident bytes: every layer's weights plus code and vertex state on each tile it uses.
  std::uint64_t expected = 0, mapped = 0;
  for (const auto& l : plan.layers)
    for (int t = 0; t < l.plan.tiles_used(); ++t)
      if (models::ipu::tile_bytes(l.plan, t, c) > 0)
        expected += models::ipu::tile_weight_bytes(l.plan, t, c) + static_cast<std::uint64_t>(c.tile_overhead_kib * 1024);
  ASSERT_EQ(plan.units.size(), 1u);
  for (auto b : plan.units[0].resident) mapped += b;
  EXPECT_EQ(mapped, expected);
  EXPECT_TRUE(plan.units[0].fits());
  // Layers start where the previous one ended.
  EXPECT_EQ(plan.layers[1].first_tile, (plan.layers[0].first_tile + plan.layers[0].plan.tiles_used()) % c.tiles);

  // Tiles as large as the largest layer needs alone: each layer still has a plan, the model does not fit.
  std::uint64_t largest = 0;
  for (const auto& l : plan.layers) largest = std::max(largest, l.plan.max_tile_bytes);
  const hwcfg::HardwareConfig tight =
      hwcfg::load_hardware_config("ipu_gc2", {"units.ipu.tiles=64", "units.ipu.tile_memory_kib=" + std::to_string(static_cast<double>(largest) / 1024 * 4)});
  const studies::IpuModelPlan crowded = studies::plan_ipu_model(*graph, tight);
  EXPECT_FALSE(crowded.units[0].fits());
  EXPECT_NE(crowded.verdicts[0].find("does NOT fit"), std::string::npos) << crowded.verdicts[0];

  // A butterfly layer's stages are grouped products of n/2 2 x 2 matrices.
  nn::TrainableNetwork bfly("butterfly_mlp", 1, 28, 28, 10, 1, 64);
  auto bgraph = nn::parse_onnx(bfly.to_onnx(), "butterfly_mlp");
  const studies::IpuModelPlan bplan = studies::plan_ipu_model(*bgraph, gc2);
  ASSERT_EQ(bplan.layers.size(), 2u + 2u * 6u);
  EXPECT_EQ(bplan.layers[1].plan.groups, 32);
  EXPECT_EQ(bplan.layers[1].plan.inputs, 2);
  EXPECT_EQ(bplan.layers[1].plan.outputs, 2);
}
