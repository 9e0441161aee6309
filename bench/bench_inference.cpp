// Google Benchmark: the engine's building blocks (GEMM through the ideal substrate, the two LeNet-5
// convolutions) and whole-network inference on a 64-image chunk.
#include <benchmark/benchmark.h>

#include "models/philox.h"
#include "models/substrate.h"
#include "nn/graph.h"
#include "nn/onnx_io.h"
#include "nn/train.h"

using namespace faultline;

namespace {

nn::Tensor random_tensor(nn::Shape shape) {
  nn::Tensor t(shape);
  const models::CounterRng rng(1, 1);
  for (std::int64_t k = 0; k < t.numel(); ++k) t.f()[k] = rng.uniform(static_cast<std::uint64_t>(k));
  return t;
}

void BM_IdealGemm(benchmark::State& state) {
  const auto rows = state.range(0), in = state.range(1), out = state.range(2);
  models::MatrixRM w = models::MatrixRM::Random(out, in), x = models::MatrixRM::Random(rows, in), y(rows, out);
  const std::unique_ptr<models::Substrate> s = models::make_exact_substrate();
  s->program(w, {}, {});
  for (auto _ : state) {
    s->multiply(x, y, {});
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * in * out, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_IdealGemm)->Args({64, 784, 256})->Args({64, 256, 256})->Args({4096, 25, 6})->Args({1600, 150, 16});

// One Conv node (NCHW) of LeNet-5's shape on 64 images.
void BM_Conv(benchmark::State& state) {
  const std::int64_t cin = state.range(0), cout = state.range(1), size = state.range(2), pad = state.range(3);
  nn::Graph g;
  g.add_input({"x", nn::DType::Float32, {}, false});
  g.add_constant("w", random_tensor({cout, cin, 5, 5}));
  nn::NodeSpec s;
  s.name = "conv";
  s.op_type = "Conv";
  s.opset = 13;
  s.inputs = {"x", "w"};
  s.outputs = {"y"};
  s.attributes["pads"] = nn::ints_attribute({pad, pad, pad, pad});
  g.add_node(s);
  g.add_output("y");
  g.finalize();
  g.program_ideal();
  const nn::Tensor x = random_tensor({64, cin, size, size});
  for (auto _ : state) benchmark::DoNotOptimize(g.run({x}));
  const std::int64_t out_size = size + 2 * pad - 4;
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 64 * cout * out_size * out_size * cin * 25, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Conv)->Args({1, 6, 28, 2})->Args({6, 16, 14, 0});

void BM_Network(benchmark::State& state, const char* arch) {
  nn::TrainableNetwork net(arch, 1, 28, 28, 10, 1);
  auto g = nn::parse_onnx(net.to_onnx(), arch);
  g->program_ideal();
  const nn::Tensor x = random_tensor({64, 1, 28, 28});
  for (auto _ : state) benchmark::DoNotOptimize(g->run({x}));
  state.counters["images/s"] = benchmark::Counter(64, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_Network, lenet5, "lenet5");
BENCHMARK_CAPTURE(BM_Network, mlp, "mlp");

}  // namespace

BENCHMARK_MAIN();
