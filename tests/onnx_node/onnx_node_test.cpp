// Runs ONNX's own backend node tests (generated from Debian's python3-onnx) for every operator
// the engine claims. A case is in scope when its model contains a node of a supported operator
// (the "_expanded" variants, which re-express an operator through others, are not). Cases listed
// in expected_unsupported.txt must fail with an UnsupportedError (so the list stays honest);
// every other case must match the reference outputs within ONNX's backend-test tolerances
// (rtol 1e-3, atol 1e-7: onnx/backend/test/runner/__init__.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <onnx/onnx_pb.h>

#include "nn/onnx_io.h"

namespace fs = std::filesystem;
using namespace faultline;

namespace {

std::map<std::string, std::string> read_expected_unsupported(const std::string& path) {
  std::map<std::string, std::string> cases;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    cases[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
  }
  return cases;
}

bool in_scope(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.size() > 9 && name.compare(name.size() - 9, 9, "_expanded") == 0) return false;
  onnx::ModelProto model;
  std::ifstream in(dir / "model.onnx", std::ios::binary);
  if (!model.ParseFromIstream(&in)) return false;
  const auto supported = nn::supported_ops();
  for (const auto& node : model.graph().node())
    if (std::find(supported.begin(), supported.end(), node.op_type()) != supported.end()) return true;
  return false;
}

// Runs one case; returns "" when every output matches, otherwise what differed.
std::string run_case(const fs::path& dir) {
  auto graph = nn::load_onnx((dir / "model.onnx").string());
  graph->program_ideal();
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return "no test data sets";
  for (const auto& set : sets) {
    std::vector<nn::Tensor> inputs, expected;
    for (int k = 0; fs::exists(set / ("input_" + std::to_string(k) + ".pb")); ++k)
      inputs.push_back(nn::load_tensor_pb((set / ("input_" + std::to_string(k) + ".pb")).string()));
    for (int k = 0; fs::exists(set / ("output_" + std::to_string(k) + ".pb")); ++k)
      expected.push_back(nn::load_tensor_pb((set / ("output_" + std::to_string(k) + ".pb")).string()));
    auto outputs = graph->run(inputs);
    if (outputs.size() < expected.size()) return "fewer outputs than expected";
    for (std::size_t k = 0; k < expected.size(); ++k) {
      const nn::Tensor& got = outputs[k];
      const nn::Tensor& want = expected[k];
      if (got.shape() != want.shape())
        return "output " + std::to_string(k) + " shape " + nn::shape_string(got.shape()) + ", expected " + nn::shape_string(want.shape());
      const nn::Tensor g = got.as(nn::DType::Float32), w = want.as(nn::DType::Float32);
      for (std::int64_t i = 0; i < g.numel(); ++i) {
        const double a = g.f()[i], b = w.f()[i];
        if (std::isnan(a) && std::isnan(b)) continue;
        if (a == b) continue;
        if (!(std::abs(a - b) <= 1e-7 + 1e-3 * std::abs(b)))
          return "output " + std::to_string(k) + " element " + std::to_string(i) + ": " + std::to_string(a) + " vs expected " + std::to_string(b);
      }
    }
  }
  return "";
}

class NodeCase : public ::testing::Test {
 public:
  NodeCase(fs::path dir, bool expect_unsupported) : dir_(std::move(dir)), expect_unsupported_(expect_unsupported) {}
  void TestBody() override {
    if (expect_unsupported_) {
      EXPECT_THROW(run_case(dir_), UnsupportedError) << dir_.filename() << " is listed as unsupported but did not report it";
      return;
    }
    std::string result;
    try {
      result = run_case(dir_);
    } catch (const std::exception& e) {
      result = std::string("threw: ") + e.what();
    }
    EXPECT_EQ(result, "") << dir_.filename();
  }

 private:
  fs::path dir_;
  bool expect_unsupported_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: onnx_node_test NODE_TEST_DIR EXPECTED_UNSUPPORTED_FILE [--list-markdown]\n");
    return 2;
  }
  const fs::path root = argv[1];
  const auto unsupported = read_expected_unsupported(argv[2]);
  const bool markdown = argc > 3 && std::string(argv[3]) == "--list-markdown";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && in_scope(e.path())) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) {
    std::fprintf(stderr, "no ONNX node tests found under %s\n", root.c_str());
    return 1;
  }
  std::set<std::string> seen;
  for (const auto& dir : dirs) {
    const std::string name = dir.filename().string();
    seen.insert(name);
    const bool expect = unsupported.count(name) != 0;
    if (markdown) {
      std::printf("%s\n", expect ? ("- `" + name + "`: " + unsupported.at(name)).c_str() : ("`" + name + "`").c_str());
      continue;
    }
    ::testing::RegisterTest("OnnxNode", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [dir, expect]() -> ::testing::Test* { return new NodeCase(dir, expect); });
  }
  if (markdown) return 0;
  for (const auto& entry : unsupported)
    if (!seen.count(entry.first)) std::fprintf(stderr, "warning: %s is listed as unsupported but is not in scope\n", entry.first.c_str());
  return RUN_ALL_TESTS();
}
