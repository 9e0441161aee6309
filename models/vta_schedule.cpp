#include "models/vta_schedule.h"

#include <algorithm>
#include <sstream>
#include <tuple>

#include "models/error.h"
#include "models/vta_lowering.h"

namespace faultline::models::vta {

std::string to_string(const Schedule& s) {
  std::ostringstream out;
  out << "b" << s.tile_b << " h" << s.tile_h << " w" << s.tile_w << " ci" << s.tile_ci << " co" << s.tile_co << " hn" << s.h_nthread << " on" << s.oc_nthread;
  return out.str();
}

const char* reason_name(InvalidReason reason) {
  switch (reason) {
    case InvalidReason::None: return "valid";
    case InvalidReason::InpBuffer: return "inp_buffer";
    case InvalidReason::WgtBuffer: return "wgt_buffer";
    case InvalidReason::AccBuffer: return "acc_buffer";
    case InvalidReason::UopBuffer: return "uop_buffer";
    case InvalidReason::InstructionField: return "instruction_field";
    case InvalidReason::AccHazard: return "acc_hazard";
    case InvalidReason::ThreadSplit: return "thread_split";
  }
  return "?";
}

ScheduleExtents schedule_extents(const ConvLayer& layer, int images, const VtaConfig& config) {
  ScheduleExtents e;
  e.groups = (images + config.batch() - 1) / config.batch();
  e.out_h = layer.out_height();
  e.out_w = layer.out_width();
  e.in_tiles = (layer.in_channels + config.block() - 1) / config.block();
  e.out_tiles = (layer.out_channels + config.block() - 1) / config.block();
  e.dense = layer.height == 1 && layer.kernel_h == 1 && layer.kernel_w == 1 && layer.stride_h == 1 && layer.stride_w == 1 && layer.pad_top == 0 &&
            layer.pad_bottom == 0 && layer.pad_left == 0 && layer.pad_right == 0;
  return e;
}

int acc_hazard_window(const VtaConfig& config) { return 1 + config.log_block; }

namespace {

std::vector<int> factors(int n) {
  std::vector<int> f;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) f.push_back(d);
  return f;
}

// Whether `value` fits `bits` unsigned bits; else the instruction_field message.
bool fits(std::uint64_t value, int bits) { return bits >= 64 || value < (std::uint64_t{1} << bits); }

}  // namespace

ScheduleCheck check_schedule(const ConvLayer& layer, int images, const Schedule& s, const VtaConfig& config) {
  const ScheduleExtents e = schedule_extents(layer, images, config);
  const auto knob = [&](const char* name, int value, int extent) {
    if (value < 1 || extent % value != 0)
      throw Error("layer " + layer.name + " on VTA: schedule " + name + " " + std::to_string(value) + " does not divide the layer's " + std::to_string(extent));
  };
  knob("tile_b", s.tile_b, e.groups);
  knob("tile_h", s.tile_h, e.out_h);
  knob("tile_w", s.tile_w, e.out_w);
  knob("tile_ci", s.tile_ci, e.in_tiles);
  knob("tile_co", s.tile_co, e.out_tiles);
  if (s.h_nthread != 1 && s.h_nthread != 2) throw Error("layer " + layer.name + " on VTA: schedule h_nthread must be 1 or 2, got " + std::to_string(s.h_nthread));
  if (s.oc_nthread != 1 && s.oc_nthread != 2) throw Error("layer " + layer.name + " on VTA: schedule oc_nthread must be 1 or 2, got " + std::to_string(s.oc_nthread));

  ScheduleCheck c;
  const auto invalid = [&c](InvalidReason r, const std::string& m) {
    if (c.reason == InvalidReason::None) {
      c.reason = r;
      c.message = m;
    }
  };
  const std::size_t vt = static_cast<std::size_t>(s.threads());
  const std::size_t kh = static_cast<std::size_t>(layer.kernel_h), kw = static_cast<std::size_t>(layer.kernel_w);
  const std::size_t rows = static_cast<std::size_t>((s.tile_h - 1) * layer.stride_h + layer.kernel_h);
  const std::size_t cols = static_cast<std::size_t>((s.tile_w - 1) * layer.stride_w + layer.kernel_w);
  const std::size_t tb = static_cast<std::size_t>(s.tile_b), tci = static_cast<std::size_t>(s.tile_ci), tco = static_cast<std::size_t>(s.tile_co);
  const std::size_t th = static_cast<std::size_t>(s.tile_h), tw = static_cast<std::size_t>(s.tile_w);
  c.inp_entries = vt * tb * tci * rows * cols;
  c.wgt_entries = vt * tco * tci * kh * kw;
  c.acc_entries = vt * tb * tco * th * tw;
  c.uops = vt * (tci * kh * kw * tb * tw + tb * tw);  // per thread: the GEMM kernel and the ALU kernel
  const auto buffer = [&](InvalidReason r, const char* name, std::size_t entries, std::size_t entry_bytes, int log_depth) {
    const std::size_t depth = std::size_t{1} << log_depth;
    if (entries > depth)
      invalid(r, std::string(name) + " needs " + std::to_string(entries) + " entries (" + std::to_string(entries * entry_bytes) + " bytes), the buffer holds " +
                     std::to_string(depth) + " (" + std::to_string(depth * entry_bytes) + " bytes)");
  };
  const std::size_t inp_entry = static_cast<std::size_t>(config.batch() * config.block());
  buffer(InvalidReason::InpBuffer, "INP", c.inp_entries, inp_entry, config.log_inp_depth());
  buffer(InvalidReason::WgtBuffer, "WGT", c.wgt_entries, static_cast<std::size_t>(config.block() * config.block()), config.log_wgt_depth());
  buffer(InvalidReason::AccBuffer, "ACC", c.acc_entries, inp_entry * 4, config.log_acc_depth());
  buffer(InvalidReason::UopBuffer, "UOP", c.uops, 4, config.log_uop_depth());

  // The widest value each 16-bit LOAD/STORE field takes (hw_spec.h: VTA_MEMOP_SIZE_BIT_WIDTH,
  // VTA_MEMOP_STRIDE_BIT_WIDTH 16; VTA_MEMOP_DRAM_ADDR_BIT_WIDTH 32 in entries of the memory).
  const std::uint64_t groups_padded = static_cast<std::uint64_t>((e.groups + s.tile_b - 1) / s.tile_b * s.tile_b);
  const std::uint64_t input_entries = groups_padded * static_cast<std::uint64_t>(e.in_tiles) * static_cast<std::uint64_t>(layer.height) * static_cast<std::uint64_t>(layer.width);
  const std::uint64_t output_entries = groups_padded * static_cast<std::uint64_t>(e.out_tiles) * static_cast<std::uint64_t>(e.out_h) * static_cast<std::uint64_t>(e.out_w);
  const struct {
    const char* field;
    std::uint64_t value;
    int bits;
  } fields[] = {
      {"LOAD INP y_size (input rows of a block)", std::min<std::uint64_t>(rows, static_cast<std::uint64_t>(layer.height)), 16},
      {"LOAD INP x_size (input columns of a block)", std::min<std::uint64_t>(cols, static_cast<std::uint64_t>(layer.width)), 16},
      {"LOAD INP x_stride (the input width)", static_cast<std::uint64_t>(layer.width), 16},
      {"LOAD WGT x_size (weight tiles per output tile and step)", tci * kh * kw, 16},
      {"LOAD WGT x_stride (weight tiles per output tile)", static_cast<std::uint64_t>(e.in_tiles) * kh * kw, 16},
      {"LOAD ACC y_size (accumulators per output tile of a block)", th * tw, 16},
      {"STORE x_stride (the output width)", static_cast<std::uint64_t>(e.out_w), 16},
      // hw_spec.h: a micro-op's src field is as wide as its dst field (log2 of the ACC depth), yet
      // a GEMM's src indexes INP.
      {"GEMM micro-op src (the last INP entry read)", c.inp_entries - 1, config.log_acc_depth()},
      {"GEMM iter_out (output tiles of a block)", tco, 14},
      {"GEMM iter_in (output rows of a block)", th, 14},
      {"LOAD/STORE dram_base (entries before the output's end)", input_entries + output_entries, 32},
  };
  for (const auto& f : fields)
    if (!fits(f.value, f.bits))
      invalid(InvalidReason::InstructionField, std::string(f.field) + " is " + std::to_string(f.value) + ", the field has " + std::to_string(f.bits) + " bits");

  if (tci * kh * kw >= 2 && static_cast<int>(tb * tw) < acc_hazard_window(config))
    invalid(InvalidReason::AccHazard, "each accumulator is written again after " + std::to_string(tb * tw) + " micro-ops (tile_b x tile_w), the GEMM pipeline writes back after " +
                                          std::to_string(acc_hazard_window(config)));
  if ((e.out_tiles / s.tile_co) % s.oc_nthread != 0)
    invalid(InvalidReason::ThreadSplit, "oc_nthread " + std::to_string(s.oc_nthread) + " does not divide the " + std::to_string(e.out_tiles / s.tile_co) + " output channel blocks");
  if ((e.out_h / s.tile_h) % s.h_nthread != 0)
    invalid(InvalidReason::ThreadSplit, "h_nthread " + std::to_string(s.h_nthread) + " does not divide the " + std::to_string(e.out_h / s.tile_h) + " row blocks");
  return c;
}

std::vector<Schedule> schedule_space(const ScheduleExtents& e) {
  std::vector<Schedule> space;
  const std::vector<int> hs = e.dense ? std::vector<int>{1} : factors(e.out_h);
  const std::vector<int> hn = e.dense ? std::vector<int>{1} : std::vector<int>{1, 2};
  for (int b : factors(e.groups))
    for (int h : hs)
      for (int w : factors(e.out_w))
        for (int ci : factors(e.in_tiles))
          for (int co : factors(e.out_tiles))
            for (int hthreads : hn)
              for (int othreads : {1, 2}) space.push_back(Schedule{b, h, w, ci, co, hthreads, othreads});
  return space;
}

Schedule default_schedule(const ConvLayer& layer, int images, const VtaConfig& config) {
  const ScheduleExtents e = schedule_extents(layer, images, config);
  Schedule best;
  bool found = false;
  // One image group per block unless a block of one cannot avoid the accumulator hazard.
  const auto key = [](const Schedule& s) { return std::make_tuple(-s.tile_b, s.tile_ci, s.tile_co, s.tile_w, s.tile_h); };
  for (int b : factors(e.groups))
    for (int h : e.dense ? std::vector<int>{1} : factors(e.out_h))
    for (int w : factors(e.out_w))
      for (int ci : factors(e.in_tiles))
        for (int co : factors(e.out_tiles)) {
          const Schedule s{b, h, w, ci, co, 1, 1};
          if ((!found || key(s) > key(best)) && check_schedule(layer, images, s, config).valid()) {
            best = s;
            found = true;
          }
        }
  if (!found) {
    // Name what the smallest configuration lacks.
    const ScheduleCheck smallest = check_schedule(layer, images, Schedule{e.groups, 1, e.out_w, 1, 1, 1, 1}, config);
    throw Error("layer " + layer.name + " on VTA: no schedule fits (" + (smallest.valid() ? std::string("none valid") : smallest.message) + ")");
  }
  return best;
}

}  // namespace faultline::models::vta
