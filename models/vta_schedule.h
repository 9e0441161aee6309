// Schedules of a VTA layer (issue 15, VTA auto-tuning): the knobs of TVM's VTA conv2d and dense
// schedules (apache/tvm python/vta/top/vta_conv2d.py and vta_dense.py: `define_split` of the
// batch, output rows, output columns, input and output channel tiles into an outer and an inner
// factor, and the `h_nthread` / `oc_nthread` virtual threads in {1, 2}), a configuration's
// validity with the reason it is invalid, and the space of all configurations of a layer in
// AutoTVM's order.
//
// What a configuration means for the program (models/vta_lowering.h): the outputs are computed in
// blocks of tile_b image groups × tile_co output channel tiles × tile_h rows × tile_w columns;
// each block accumulates over the input channel tiles in steps of tile_ci (per step: load the
// input rows and columns the block needs and the step's weights, one GEMM); h_nthread × oc_nthread
// blocks (neighbours along rows / output channels) are in flight together as TVM's virtual threads
// (`cthread`): each has its own INP, WGT and ACC region, and the dependency tokens let one thread's
// loads overlap another's GEMMs and one thread's stores the next block's work.
//
// Why a configuration is invalid (TVM fails it at compile or run time; Rieber et al., arXiv
// 2205.15568, count these as the invalid share of AutoTVM's VTA space):
//  - inp_buffer / wgt_buffer / acc_buffer / uop_buffer: the threads' regions (or the micro-op
//    kernels) exceed the on-chip buffer;
//  - instruction_field: a field of an instruction would not fit its bit width (hw_spec.h);
//  - acc_hazard: the GEMM core is pipelined with no read-after-write check on ACC (tvm-vta
//    hardware/xilinx/src/vta.cc: `#pragma HLS DEPENDENCE variable=acc_mem inter false`, "necessary
//    to obtain II=1"), so one GEMM instruction must not read an accumulator within the pipeline's
//    read-to-write latency of writing it; here the write of a block entry repeats every
//    tile_b × tile_w micro-ops, and the latency is one MAC cycle plus log2(BLOCK) adder stages
//    (tvm-vta core/TensorGemm.scala: MatrixVectorMultiplication's MAC and pipelined adder tree);
//  - thread_split: a virtual thread count that does not divide the outer loop it splits (TVM's
//    split leaves a guarded tail the VTA code generator cannot lower).
// An instruction-queue limit cannot be reached by these programs: every token a module pops was
// pushed by an instruction earlier in the stream, so a full queue delays fetch but never
// deadlocks it (the cycle level still detects such a deadlock in hand-written programs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/vta_isa.h"

namespace faultline::models::vta {

struct ConvLayer;

// Inner factors of the splits (the outer ones follow) and the virtual threads. All zero: the
// default schedule (default_schedule). Units: image groups of BATCH, output rows, output columns,
// channel tiles of BLOCK.
struct Schedule {
  int tile_b = 0, tile_h = 0, tile_w = 0, tile_ci = 0, tile_co = 0;
  int h_nthread = 0, oc_nthread = 0;
  bool is_default() const { return tile_b == 0 && tile_h == 0 && tile_w == 0 && tile_ci == 0 && tile_co == 0 && h_nthread == 0 && oc_nthread == 0; }
  int threads() const { return h_nthread * oc_nthread; }
  bool operator==(const Schedule& o) const {
    return tile_b == o.tile_b && tile_h == o.tile_h && tile_w == o.tile_w && tile_ci == o.tile_ci && tile_co == o.tile_co && h_nthread == o.h_nthread &&
           oc_nthread == o.oc_nthread;
  }
  bool operator!=(const Schedule& o) const { return !(*this == o); }
};
// "b1 h1 w24 ci1 co1 hn1 on1"
std::string to_string(const Schedule& s);

// The extents a schedule splits, of `images` images of `layer`.
struct ScheduleExtents {
  int groups = 0, out_h = 0, out_w = 0, in_tiles = 0, out_tiles = 0;
  bool dense = false;  // a 1 × 1 convolution of 1-row images (dense_as_conv): no row split, no h_nthread
};
ScheduleExtents schedule_extents(const ConvLayer& layer, int images, const VtaConfig& config);

enum class InvalidReason { None = 0, InpBuffer, WgtBuffer, AccBuffer, UopBuffer, InstructionField, AccHazard, ThreadSplit };
constexpr int kInvalidReasons = 8;
const char* reason_name(InvalidReason reason);  // "valid", "inp_buffer", ...

// What a configuration needs, and whether it is valid.
struct ScheduleCheck {
  InvalidReason reason = InvalidReason::None;
  std::string message;  // why it is invalid, with the numbers ("" when valid)
  std::size_t inp_entries = 0, wgt_entries = 0, acc_entries = 0, uops = 0;  // needed, all threads
  bool valid() const { return reason == InvalidReason::None; }
};
// The check of `schedule` (a full one, not the default) for `images` images of `layer`. Cheap: no
// program is built. The first failing reason in the order of InvalidReason is reported. A
// schedule whose factors do not divide the extents is not in the space: an Error naming the knob.
ScheduleCheck check_schedule(const ConvLayer& layer, int images, const Schedule& schedule, const VtaConfig& config);

// The accumulator hazard window: micro-ops between a GEMM micro-op's ACC read and its write-back.
int acc_hazard_window(const VtaConfig& config);

// Every configuration of the layer in AutoTVM's enumeration order (the knobs in definition order
// tile_b, tile_h, tile_w, tile_ci, tile_co, h_nthread, oc_nthread; the last varies fastest; a
// split's factors ascending). A dense layer has tile_h = 1 and h_nthread = 1 only.
std::vector<Schedule> schedule_space(const ScheduleExtents& extents);

// The schedule used when none is given (greedy, as a hand-written kernel would tile): one thread,
// and among the valid configurations the fewest image groups per block (one unless one cannot
// avoid the accumulator hazard), then the most input channel tiles per step, the most output
// channel tiles, the widest and then the tallest block. Throws faultline::Error
// naming the layer when no such configuration is valid.
Schedule default_schedule(const ConvLayer& layer, int images, const VtaConfig& config);

}  // namespace faultline::models::vta
