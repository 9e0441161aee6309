// The IPU kind's costs (issue 16): planning one layer over the tiles (the goal: under 10 ms) for
// LeNet-5's conv1 at batch 16 (12 544 x 25 -> 6), a 4096 x 4096 dense layer, and a butterfly
// stage of 2048 grouped 2 x 2 matrices, on GC200's 1472 tiles. Run: build/bench/faultline_bench_ipu
// (the fp16 and cycle-level speeds against ideal: bench/ipu_speed.sh).
#include <benchmark/benchmark.h>

#include "models/ipu_substrate.h"

namespace {

using namespace faultline::models::ipu;

void BM_PlanLayer(benchmark::State& state) {
  const IpuUnitConfig c;  // GC200
  const std::int64_t rows = state.range(0), inputs = state.range(1), outputs = state.range(2), groups = state.range(3);
  double cycles = 0;
  for (auto _ : state) cycles = plan_matmul(rows, inputs, outputs, c, "layer", groups).cycles();
  benchmark::DoNotOptimize(cycles);
}
BENCHMARK(BM_PlanLayer)->Args({16 * 784, 25, 6, 1})->Args({16, 4096, 4096, 1})->Args({16, 2, 2, 2048})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
