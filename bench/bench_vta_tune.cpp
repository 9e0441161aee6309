// The VTA tuner's costs (issue 15): one measurement of a ResNet-18 layer configuration on the
// cycle level (the goal: under a second on one thread), and the cheap validity check of a whole
// schedule space. Run: build/bench/faultline_bench_vta_tune
#include <benchmark/benchmark.h>

#include "models/vta_schedule.h"
#include "studies/vta_tune.h"

namespace {

using namespace faultline::models::vta;

ConvLayer resnet_layer(int channels, int size) {
  ConvLayer l;
  l.name = "resnet";
  l.in_channels = l.out_channels = channels;
  l.height = l.width = size;
  l.kernel_h = l.kernel_w = 3;
  l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = 1;
  return l;
}

// One cycle-level measurement: ResNet-18's 56 x 56 x 64 layer (451 584 GEMM micro-ops) and its
// 7 x 7 x 512 layer, each at its default schedule.
void BM_MeasureCycles(benchmark::State& state) {
  const ConvLayer layer = resnet_layer(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const VtaConfig config;
  const Schedule s = default_schedule(layer, 1, config);
  std::uint64_t cycles = 0;
  for (auto _ : state) cycles = faultline::studies::measure_vta_cycles(layer, 1, s, config, VtaTiming{});
  state.counters["vta_cycles"] = static_cast<double>(cycles);
}
BENCHMARK(BM_MeasureCycles)->Args({64, 56})->Args({512, 7})->Unit(benchmark::kMillisecond);

// The validity check of every configuration of the 56 x 56 x 64 layer's space (2304).
void BM_CheckSpace(benchmark::State& state) {
  const ConvLayer layer = resnet_layer(64, 56);
  const VtaConfig config;
  const std::vector<Schedule> space = schedule_space(schedule_extents(layer, 1, config));
  std::size_t valid = 0;
  for (auto _ : state) {
    valid = 0;
    for (const Schedule& s : space) valid += check_schedule(layer, 1, s, config).valid();
  }
  state.counters["configurations"] = static_cast<double>(space.size());
  state.counters["valid"] = static_cast<double>(valid);
}
BENCHMARK(BM_CheckSpace)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
