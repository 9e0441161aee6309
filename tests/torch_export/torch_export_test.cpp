// Models exported by PyTorch (torch.onnx.export, opsets 11 to 17, dynamic batch) load as they
// are and reproduce PyTorch's outputs. The models and outputs come from export_models.py. The
// opset-13 exports also run on VTA (the `vta` preset: feature-map convolutions, a grouped one, a
// dilated one through im2col, MatMul and Gemm heads), every layer within 20 dB of its exact product.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "hwcfg/hardware_config.h"
#include "nn/npy.h"
#include "nn/onnx_io.h"
#include "studies/hardware.h"

using namespace faultline;

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: torch_export_test EXPORT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::ifstream manifest(dir + "/manifest.txt");
  std::string stem;
  int cases = 0;
  while (std::getline(manifest, stem)) {
    if (stem.empty()) continue;
    ++cases;
    const std::string model = stem.substr(0, stem.rfind("_opset"));
    ::testing::RegisterTest("TorchExport", stem.c_str(), nullptr, nullptr, __FILE__, __LINE__, [dir, stem, model]() -> ::testing::Test* {
      struct Case : ::testing::Test {
        std::string dir, stem, model;
        void TestBody() override {
          auto graph = nn::load_onnx(dir + "/" + stem + ".onnx");
          graph->program_ideal();
          const nn::Tensor x = nn::load_npy(dir + "/" + model + "_input.npy");
          const nn::Tensor expected = nn::load_npy(dir + "/" + model + "_expected.npy");
          const nn::Tensor y = graph->run({x})[0];
          ASSERT_EQ(y.shape(), expected.shape());
          for (std::int64_t k = 0; k < y.numel(); ++k)
            ASSERT_NEAR(y.f()[k], expected.f()[k], 1e-4 + 1e-4 * std::abs(expected.f()[k])) << "element " << k;
        }
      };
      auto* c = new Case;
      c->dir = dir;
      c->stem = stem;
      c->model = model;
      return c;
    });
    if (stem.size() < 2 || stem.substr(stem.size() - 2) != "13") continue;
    ::testing::RegisterTest("TorchExportOnVta", stem.c_str(), nullptr, nullptr, __FILE__, __LINE__, [dir, stem, model]() -> ::testing::Test* {
      struct Case : ::testing::Test {
        std::string dir, stem, model;
        void TestBody() override {
          auto graph = nn::load_onnx(dir + "/" + stem + ".onnx");
          const nn::Tensor x = nn::load_npy(dir + "/" + model + "_input.npy");
          const hwcfg::HardwareConfig vta = hwcfg::load_hardware_config("vta");
          studies::calibrate(vta, *graph, [&](std::int64_t) { (void)graph->run({x}); });
          studies::program(vta, *graph, {1, 0});
          for (nn::LinearLayer* layer : graph->layers()) layer->measure_error(true);
          (void)graph->run({x});
          ASSERT_FALSE(graph->layers().empty());
          for (const nn::LinearLayer* layer : graph->layers()) {
            const auto e = layer->error_stats();
            EXPECT_GT(e.count, 0u) << layer->name();
            EXPECT_GT(layer->counters().at("gemm_counter"), 0) << layer->name();
            // Calibrated int8 in and out: well above 20 dB against the exact product of the same inputs.
            EXPECT_GT(10 * std::log10(e.signal_sq / std::max(e.error_sq, 1e-30)), 20.0) << layer->name();
          }
        }
      };
      auto* c = new Case;
      c->dir = dir;
      c->stem = stem;
      c->model = model;
      return c;
    });
  }
  if (cases == 0) {
    std::fprintf(stderr, "no exported models listed in %s/manifest.txt\n", dir.c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
