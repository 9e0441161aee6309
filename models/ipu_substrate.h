// The hardware kind `ipu` (issue 16, first part): a Graphcore-style IPU at the functional level --
// a mapped layer's product planned over the chip's tiles (rows, columns and the reduction split,
// every tile holding its slice of weights, inputs and partial sums within its memory) and computed
// with the IPU's numerics: fp32, or fp16 weights and activations with fp32 or fp16 partial sums,
// conversions to fp16 rounded to nearest or stochastically (the IPU rounds stochastically in
// hardware; models/fp16.h) from keyed random streams.
//
// Facts (../shared/DESIGN.md, "Graphcore IPU"): Mk2 GC200 1472 tiles × 624 KiB, 6 worker threads per
// tile, 250 TFLOP/s fp16 and 62.5 fp32 per chip, 8 TB/s exchange; Mk1 GC2 (Jia et al., arXiv
// 1912.03413) 1216 tiles × 256 KiB at 1.6 GHz, 16 and 64 FLOP/cycle/tile (fp32, mixed). Execution
// is bulk-synchronous: sync, exchange, compute. Per-parameter sources are in ipu_substrate.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "models/param_table.h"
#include "models/substrate.h"

namespace faultline::models::ipu {

struct IpuUnitConfig {
  int tiles = 1472;
  double tile_memory_kib = 624;
  int workers = 6;
  double clock_mhz = 1330;
  int amp_macs_fp32 = 16, amp_macs_fp16 = 64;  // multiply-accumulates per tile per cycle
  double exchange_bytes_per_cycle = 4;          // per tile
  int exchange_latency = 30, sync_cycles = 150;
  double tile_overhead_kib = 16;                // code and vertex state per used tile
  std::string precision = "fp16.32";            // fp32, fp16.32 (fp16 in, fp32 partials), fp16.16
  std::string rounding = "nearest";             // nearest, stochastic
  int batch = 16;                               // rows per compiled run (a plan is for this many rows)
  static const ParamTable<IpuUnitConfig>& table();
};

// How one layer's product (batch rows × inputs → outputs) is spread over the tiles, and what it costs.
// A layer of several weight blocks (a grouped convolution's groups, a batched MatMul's matrices:
// `groups` independent products of the same shape) is planned as one grouped product, as Poplar
// plans grouped matmuls: the groups are split over tiles first.
struct IpuPlan {
  std::int64_t groups = 1, rows = 0, inputs = 0, outputs = 0;
  int group_splits = 1, row_splits = 1, column_splits = 1, reduction_splits = 1;
  std::int64_t groups_per_tile = 1, rows_per_tile = 0, inputs_per_tile = 0, outputs_per_tile = 0;  // the largest slice
  std::uint64_t max_tile_bytes = 0;    // the fullest tile: weights + inputs + partials + overhead
  double mean_tile_bytes = 0;          // over the used tiles
  std::uint64_t weight_bytes = 0, input_bytes = 0, partial_bytes = 0, overhead_bytes = 0;  // of the fullest tile
  std::uint64_t exchange_bytes = 0;    // all tiles: inputs in, partials to their reducers
  int supersteps = 0;                  // compute supersteps (1, or 2 with a reduction)
  double exchange_cycles = 0, compute_cycles = 0, sync_cycles = 0;
  double cycles() const { return exchange_cycles + compute_cycles + sync_cycles; }
  int tiles_used() const { return group_splits * row_splits * column_splits * reduction_splits; }
};

// The memory and cycles of splitting rows into pr, outputs into pc and inputs into pk parts (ceil
// slices; one tile per slice triple): superstep 1 is a sync, the inputs' exchange (latency plus
// the fullest tile's input bytes over the exchange bandwidth) and the MACs (each tile's output
// elements shared by the workers, a worker's products at amp / workers per cycle); with pk > 1 a
// second superstep sends pk − 1 partial slices to each reducer and adds them.
// (`groups` products split into pg parts: each tile holds ceil(groups / pg) of them.)
IpuPlan evaluate_plan(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, std::int64_t pr, std::int64_t pc, std::int64_t pk, const IpuUnitConfig& config,
                      std::int64_t groups = 1, std::int64_t pg = 1);

// The plan with the fewest cycles whose every tile fits its memory (ties: fewer tiles). Throws
// faultline::Error naming `layer`, the tile, the bytes needed and available when none fits.
IpuPlan plan_matmul(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, const IpuUnitConfig& config, const std::string& layer,
                    std::int64_t groups = 1);

// What one tile does in one superstep of a plan (tile t = ((group slice · row splits + row slice)
// · column splits + column slice) · reduction splits + reduction slice; the edge slices are smaller). Superstep 0 receives
// the tile's input slice and multiplies; superstep 1 (plans with a reduction split) sends every
// partial slice to the tile of reduction slice 0, which receives pk − 1 of them and adds them.
struct IpuTileWork {
  std::uint64_t bytes_in = 0;   // received in the exchange phase
  double exchange_cycles = 0;   // latency + bytes_in over the bandwidth (0 when nothing arrives)
  double compute_cycles = 0;    // the slice's MACs (or additions) spread over the workers at the AMP rate
  double macs = 0;              // multiply-accumulates (superstep 0) or additions (superstep 1)
};
IpuTileWork tile_work(const IpuPlan& plan, int tile, int superstep, const IpuUnitConfig& config);
// The bytes tile `tile` holds for this layer while it runs: its weights, inputs, partials and the
// code and vertex state (the plan's max_tile_bytes for the largest slice).
std::uint64_t tile_bytes(const IpuPlan& plan, int tile, const IpuUnitConfig& config);
// Of those, the weights only (what stays resident while other layers run).
std::uint64_t tile_weight_bytes(const IpuPlan& plan, int tile, const IpuUnitConfig& config);

// The cycle level's own parameter (a unit's `timing:` section): how many tiles one SystemC process
// simulates. A simulation granularity, not a hardware fact: each tile is still timed on its own
// slice, and a phase lasts as long as its slowest tile.
struct IpuTiming {
  int tiles_per_process = 64;
  static const ParamTable<IpuTiming>& table();
};

// The bytes of one element of weights/inputs and of partial sums for a precision.
int value_bytes(const std::string& precision);
int partial_bytes(const std::string& precision);

}  // namespace faultline::models::ipu
