// libFuzzer target: the ONNX loader (nn/onnx_io.h), then one run of any graph whose single
// input has a known, small float shape, with zeros. Faultline's own errors (faultline::Error) are
// the correct answer to bad input; anything else (a crash, a sanitizer report, another
// exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/error.h"
#include "nn/graph.h"
#include "nn/onnx_io.h"
#include "nn/tensor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Hostile shapes must fail with an error, not exhaust the fuzzer's memory limit.
  faultline::nn::set_max_tensor_elements(std::int64_t{1} << 22);
  try {
    auto graph = faultline::nn::parse_onnx(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    const auto& inputs = graph->inputs();
    if (inputs.size() != 1 || !inputs[0].shape_known || inputs[0].dtype != faultline::nn::DType::Float32) return 0;
    faultline::nn::Shape shape = inputs[0].shape;
    for (auto& d : shape) if (d < 0) d = 1;
    std::int64_t count = 1;
    for (auto d : shape) count = d > 0 && count <= (1 << 16) / d ? count * d : (1 << 17);
    if (count > (1 << 16)) return 0;
    graph->program_ideal();
    std::vector<faultline::nn::Tensor> in;
    in.emplace_back(shape);
    (void)graph->run(std::move(in));
  } catch (const faultline::Error&) {
  }
  return 0;
}
