// The cycle level of the ipu kind (models/ipu_substrate.h): a layer's plan run as bulk-synchronous
// supersteps (Graphcore glossary, "BSP": each superstep is a synchronization, a communication and
// a local compute phase; IPU Programmer's Guide: tiles compute only on their own memory and
// exchange data between compute phases). Per run of the compiled program (batch samples):
//
//   for each superstep s of the plan (1, or 2 with a reduction split):
//     sync      sync_cycles                                        (chip-wide)
//     exchange  max over tiles of latency + bytes_in / bandwidth   (tiles that receive nothing: 0)
//     compute   max over tiles of the tile's compute cycles        (models::ipu::tile_work)
//
// The tiles are SystemC processes, `timing.tiles_per_process` tiles each: a phase starts every
// process, each waits for its slowest tile, and the phase ends when the last process does (the
// barrier). The reads of one pass (one run_pending) are batched: N samples make ceil(N / batch)
// runs, as the functional level counts them, so `cycles` equals the functional `plan_cycles`. Values come from
// the functional model (the cycle level changes none). Programming (the weights' load from the
// host) takes no simulated time here, and there is no energy model (energy_pj stays 0).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "models/ipu_substrate.h"
#include "sim/operation.h"
#include "sim/unit_system.h"

namespace faultline::sim {
namespace {

using models::ipu::IpuPlan;
using models::ipu::IpuUnitConfig;

enum Phase : int { kIdle = 0, kSync = 1, kExchange = 2, kCompute = 3 };

class IpuSystem;

// One SystemC process's tiles: [first, first + count).
class TileGroup : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(TileGroup);
  TileGroup(const sc_core::sc_module_name& name, IpuSystem& system, int first, int count);
  sc_core::sc_event start;
  sc_core::sc_signal<int, sc_core::SC_MANY_WRITERS> phase;

 private:
  struct Work {
    double exchange_longest = 0, bytes = 0, compute_longest = 0, busy = 0, macs = 0;
  };
  void run();
  const Work& work(const IpuPlan& plan, int superstep);
  IpuSystem& system_;
  int first_, count_;
  std::map<std::pair<const IpuPlan*, int>, Work> work_;
};

class IpuSystem : public UnitSystem {
 public:
  IpuSystem(const sc_core::sc_module_name& name, const UnitSpec& spec)
      : UnitSystem(name, IpuUnitConfig::table().read(spec.params).clock_mhz),
        superstep("superstep"),
        phase("phase"),
        config_(IpuUnitConfig::table().read(spec.params)),
        timing_(models::ipu::IpuTiming::table().read(spec.timing)) {
    for (int first = 0, g = 0; first < config_.tiles; first += timing_.tiles_per_process, ++g) {
      const std::string n = "tiles" + std::to_string(g);
      groups_.push_back(std::make_unique<TileGroup>(n.c_str(), *this, first, std::min(timing_.tiles_per_process, config_.tiles - first)));
    }
  }

  void execute(Operation& op) override {
    // No energy model for the IPU yet: energy is reported as 0 (not estimated).
    counters.add("energy_pj", 0.0);
    // A layer of several blocks runs as one grouped product: block 0's reads run its supersteps,
    // the other blocks' reads are part of them.
    if (op.type == Operation::Type::Program || op.part != 0) return;
    const std::uint64_t rows_per_sample = std::max<std::uint64_t>(1, op.rows_per_sample);
    const std::uint64_t samples = op.convolution ? static_cast<std::uint64_t>(op.vectors) : static_cast<std::uint64_t>(op.vectors) / rows_per_sample;
    // Samples wait until a batch is full; the block's last read runs what is left as one more
    // (padded) run. So a pass over N samples makes ceil(N / batch) runs however the engine
    // split it into reads.
    std::uint64_t& waiting = waiting_samples_[{op.layer, op.part}];
    waiting += samples;
    const std::uint64_t batch = static_cast<std::uint64_t>(config_.batch);
    std::uint64_t runs = waiting / batch;
    waiting %= batch;
    if (op.last_of_block && waiting > 0) {
      ++runs;
      waiting = 0;
    }
    plan_ = &plan_for(op.inputs, op.outputs, rows_per_sample, std::max(1, op.parts), op.layer_name);
    for (std::uint64_t run = 0; run < runs; ++run) {
      for (int s = 0; s < plan_->supersteps; ++s) {
        superstep.write(s + 1);
        phase.write(kSync);
        counters.add("sync_cycles", config_.sync_cycles);
        wait(cycles(config_.sync_cycles));
        run_phase(kExchange, s);
        run_phase(kCompute, s);
        counters.add("supersteps", 1);
      }
      counters.add("runs", 1);
    }
    superstep.write(0);
    phase.write(kIdle);
    plan_ = nullptr;
  }

  double peak_macs_per_cycle(const Operation& op) const override {
    // Every tile the layer's plan uses, its AMP at full rate.
    const int amp = config_.precision == "fp32" ? config_.amp_macs_fp32 : config_.amp_macs_fp16;
    if (op.part != 0) return 0.0;
    const auto it = plans_.find(std::make_tuple(op.inputs, op.outputs, std::max<std::uint64_t>(1, op.rows_per_sample), std::max(1, op.parts)));
    return it == plans_.end() ? 0.0 : static_cast<double>(it->second.tiles_used()) * amp;
  }

  void trace(sc_core::sc_trace_file* file) const override {
    UnitSystem::trace(file);
    sc_core::sc_trace(file, superstep, superstep.name());
    sc_core::sc_trace(file, phase, phase.name());
    for (const auto& g : groups_) sc_core::sc_trace(file, g->phase, g->phase.name());
  }

  // For the tile groups: the phase now running and its barrier.
  const IpuPlan* plan_ = nullptr;
  int current_phase_ = kIdle, current_superstep_ = 0;
  int remaining_ = 0;
  sc_core::sc_event phase_done;
  const IpuUnitConfig& config() const { return config_; }

  sc_core::sc_signal<int, sc_core::SC_MANY_WRITERS> superstep;  // 1-based; 0 between layers
  sc_core::sc_signal<int, sc_core::SC_MANY_WRITERS> phase;      // Phase

  sc_core::sc_time cycles_of(double n) const { return cycles(n); }

 private:
  void run_phase(int which, int step) {
    phase.write(which);
    current_phase_ = which;
    current_superstep_ = step;
    remaining_ = static_cast<int>(groups_.size());
    const sc_core::sc_time begin = sc_core::sc_time_stamp();
    for (auto& g : groups_) g->start.notify(sc_core::SC_ZERO_TIME);
    wait(phase_done);
    counters.add(which == kExchange ? "exchange_cycles" : "compute_cycles", (sc_core::sc_time_stamp() - begin) / period());
  }

  const IpuPlan& plan_for(std::int64_t inputs, std::int64_t outputs, std::uint64_t rows_per_sample, int groups, const std::string& layer) {
    const auto key = std::make_tuple(inputs, outputs, rows_per_sample, groups);
    auto it = plans_.find(key);
    if (it == plans_.end())
      it = plans_.emplace(key, models::ipu::plan_matmul(static_cast<std::int64_t>(rows_per_sample) * config_.batch, inputs, outputs, config_, layer, groups)).first;
    return it->second;
  }

  IpuUnitConfig config_;
  models::ipu::IpuTiming timing_;
  std::vector<std::unique_ptr<TileGroup>> groups_;
  std::map<std::tuple<std::int64_t, std::int64_t, std::uint64_t, int>, IpuPlan> plans_;
  std::map<std::pair<int, int>, std::uint64_t> waiting_samples_;  // per (layer, part)
};

const TileGroup::Work& TileGroup::work(const IpuPlan& plan, int superstep) {
  // This group's tiles in one superstep of a plan: the slowest decides when the group is done.
  // The same for every run of the plan, so worked out once (plans live as long as the system).
  auto [it, added] = work_.try_emplace({&plan, superstep});
  if (added) {
    Work& w = it->second;
    const int last = std::min(first_ + count_, plan.tiles_used());
    for (int t = first_; t < last; ++t) {
      const models::ipu::IpuTileWork tile = models::ipu::tile_work(plan, t, superstep, system_.config());
      w.exchange_longest = std::max(w.exchange_longest, tile.exchange_cycles);
      w.bytes += static_cast<double>(tile.bytes_in);
      w.compute_longest = std::max(w.compute_longest, tile.compute_cycles);
      w.busy += tile.compute_cycles;
      w.macs += tile.macs;
    }
  }
  return it->second;
}

TileGroup::TileGroup(const sc_core::sc_module_name& name, IpuSystem& system, int first, int count)
    : sc_module(name), phase("phase"), system_(system), first_(first), count_(count) {
  SC_THREAD(run);
}

void TileGroup::run() {
  for (;;) {
    wait(start);
    const Work& w = work(*system_.plan_, system_.current_superstep_);
    const bool exchange = system_.current_phase_ == kExchange;
    const double longest = exchange ? w.exchange_longest : w.compute_longest;
    if (exchange) {
      system_.counters.add("tile_bytes_received", w.bytes);
    } else {
      system_.counters.add("tile_busy_cycles", w.busy);
      system_.counters.add(system_.current_superstep_ == 0 ? "macs" : "reduction_adds", w.macs);
    }
    if (longest > 0) {
      phase.write(system_.current_phase_);
      wait(system_.cycles_of(longest));
      phase.write(kIdle);
    }
    if (--system_.remaining_ == 0) system_.phase_done.notify(sc_core::SC_ZERO_TIME);
  }
}

std::unique_ptr<UnitSystem> make_ipu_system(const char* name, const UnitSpec& spec) { return std::make_unique<IpuSystem>(name, spec); }

}  // namespace

FAULTLINE_REGISTER_CYCLE_MODEL(ipu, CycleModel{&make_ipu_system, false})

}  // namespace faultline::sim
