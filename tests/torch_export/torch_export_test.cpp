// Models exported by PyTorch (torch.onnx.export, opsets 11 to 17, dynamic batch) load as they
// are and reproduce PyTorch's outputs. The models and outputs come from export_models.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "nn/npy.h"
#include "nn/onnx_io.h"

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
  }
  if (cases == 0) {
    std::fprintf(stderr, "no exported models listed in %s/manifest.txt\n", dir.c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
