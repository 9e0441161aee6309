#include "models/ipu_substrate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "models/error.h"
#include "models/fp16.h"
#include "models/philox.h"

namespace faultline::models::ipu {

const ParamTable<IpuUnitConfig>& IpuUnitConfig::table() {
  static const ParamTable<IpuUnitConfig> t = [] {
    using C = IpuUnitConfig;
    ParamTable<C> p;
    p.integer("tiles", &C::tiles, 1, 1 << 16, "tiles", "tiles per chip (Mk2 GC200: 1472, Graphcore IPU-M2000 datasheet; Mk1 GC2: 1216, Jia et al. arXiv 1912.03413)");
    p.number("tile_memory_kib", &C::tile_memory_kib, 1, 1 << 20, "KiB", "SRAM per tile (GC200: 624 KiB, 900 MB per chip; GC2: 256 KiB, Jia et al.)");
    p.integer("workers", &C::workers, 1, 64, "threads", "worker threads per tile (6 on GC2 and GC200, plus a supervisor; Jia et al.)");
    p.number("clock_mhz", &C::clock_mhz, 1, 10000, "MHz",
             "tile clock (GC200: 1330 MHz, from 250 TFLOP/s fp16 = 1472 tiles x 128 FLOP/cycle; GC2: 1600 MHz, Jia et al.; Bow: 1850)");
    p.integer("amp_macs_fp32", &C::amp_macs_fp32, 1, 4096, "MAC/cycle",
              "fp32 multiply-accumulates per tile per cycle on the AMP unit (GC200: 16, from 62.5 TFLOP/s; GC2: 8, 16 FLOP/cycle, Jia et al.)");
    p.integer("amp_macs_fp16", &C::amp_macs_fp16, 1, 4096, "MAC/cycle",
              "fp16 multiply-accumulates per tile per cycle (GC200: 64, from 250 TFLOP/s; GC2: 32, 64 FLOP/cycle mixed, Jia et al.)");
    p.number("exchange_bytes_per_cycle", &C::exchange_bytes_per_cycle, 0.01, 1e6, "B/cycle",
             "exchange bandwidth into one tile (GC200: 8 TB/s over 1472 tiles at 1.33 GHz, about 4 B/cycle)");
    p.integer("exchange_latency", &C::exchange_latency, 0, 1000000, "cycles", "start-up of an exchange phase (assumed)");
    p.integer("sync_cycles", &C::sync_cycles, 0, 1000000, "cycles", "one chip-wide bulk-synchronous sync (assumed)");
    p.number("tile_overhead_kib", &C::tile_overhead_kib, 0, 1 << 20, "KiB", "code and vertex state on every used tile (assumed)");
    p.choice("precision", &C::precision, {"fp16.32", "fp32", "fp16.16"},
             "fp32; fp16.32: fp16 weights and activations, fp32 partial sums; fp16.16: fp16 partial sums too (Poplar's partialsType)");
    p.choice("rounding", &C::rounding, {"nearest", "stochastic"},
             "conversions to fp16: to nearest even, or stochastic (the IPU's hardware stochastic rounding) from keyed random streams");
    p.integer("batch", &C::batch, 1, 1 << 20, "rows", "rows a layer is planned for (Poplar compiles a matmul for a fixed batch); reads run in runs of this many");
    return p;
  }();
  return t;
}

int value_bytes(const std::string& precision) { return precision == "fp32" ? 4 : 2; }
int partial_bytes(const std::string& precision) { return precision == "fp16.16" ? 2 : 4; }

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Candidate split counts of an extent: powers of two below it and the extent itself.
std::vector<std::int64_t> splits(std::int64_t extent, std::int64_t limit) {
  std::vector<std::int64_t> s;
  for (std::int64_t v = 1; v < extent && v <= limit; v *= 2) s.push_back(v);
  if (extent <= limit) s.push_back(extent);
  return s;
}

}  // namespace

namespace {
struct Slice {
  std::uint64_t groups, rows, inputs, outputs;
};
// The slice sizes of tile `tile` (ceil slices; the last of each split takes what is left).
Slice tile_slice(const IpuPlan& p, std::int64_t tile) {
  const std::int64_t ki = tile % p.reduction_splits, ci = (tile / p.reduction_splits) % p.column_splits,
                     ri = (tile / (p.reduction_splits * p.column_splits)) % p.row_splits,
                     gi = tile / (static_cast<std::int64_t>(p.reduction_splits) * p.column_splits * p.row_splits);
  const auto part = [](std::int64_t extent, std::int64_t per, std::int64_t index) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, std::min(per, extent - index * per)));
  };
  return {part(p.groups, p.groups_per_tile, gi), part(p.rows, p.rows_per_tile, ri), part(p.inputs, p.inputs_per_tile, ki),
          part(p.outputs, p.outputs_per_tile, ci)};
}

struct TileBytes {
  std::uint64_t weights, inputs, partials, overhead;
  std::uint64_t total() const { return weights + inputs + partials + overhead; }
};
TileBytes slice_bytes(const Slice& s, const IpuUnitConfig& c) {
  const std::uint64_t vb = static_cast<std::uint64_t>(value_bytes(c.precision)), pb = static_cast<std::uint64_t>(partial_bytes(c.precision));
  return {s.groups * s.inputs * s.outputs * vb, s.groups * s.rows * s.inputs * vb, s.groups * s.rows * s.outputs * pb,
          s.groups > 0 ? static_cast<std::uint64_t>(std::llround(c.tile_overhead_kib * 1024)) : 0};
}

// Superstep 0: the tile's input slices arrive, then its MACs (its output elements shared by the
// workers, each worker's products at the AMP rate per worker). Superstep 1 (a reduction split):
// each tile of reduction slice 0 receives the pk − 1 other partial slices of its outputs and adds
// them (one addition per element per partial, spread over the workers).
IpuTileWork slice_work(const Slice& s, bool reducer, int superstep, std::int64_t reduction_splits, const IpuUnitConfig& c) {
  IpuTileWork w;
  const std::uint64_t vb = static_cast<std::uint64_t>(value_bytes(c.precision)), pb = static_cast<std::uint64_t>(partial_bytes(c.precision));
  const std::uint64_t workers = static_cast<std::uint64_t>(c.workers);
  const std::uint64_t elements = s.groups * s.rows * s.outputs, per_worker = (elements + workers - 1) / workers;
  if (superstep == 0) {
    const int amp = c.precision == "fp32" ? c.amp_macs_fp32 : c.amp_macs_fp16;
    w.bytes_in = s.groups * s.rows * s.inputs * vb;
    w.compute_cycles = std::ceil(static_cast<double>(per_worker * s.inputs) * c.workers / amp);
    w.macs = static_cast<double>(elements * s.inputs);
  } else if (reducer) {
    const std::uint64_t others = static_cast<std::uint64_t>(reduction_splits - 1);
    w.bytes_in = elements * pb * others;
    w.compute_cycles = static_cast<double>(per_worker * others);
    w.macs = static_cast<double>(elements * others);
  }
  if (w.bytes_in > 0) w.exchange_cycles = c.exchange_latency + std::ceil(static_cast<double>(w.bytes_in) / c.exchange_bytes_per_cycle);
  return w;
}
}  // namespace

IpuPlan evaluate_plan(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, std::int64_t pr, std::int64_t pc, std::int64_t pk, const IpuUnitConfig& c,
                      std::int64_t groups, std::int64_t pg) {
  IpuPlan p;
  p.groups = groups, p.rows = rows, p.inputs = inputs, p.outputs = outputs;
  p.group_splits = static_cast<int>(pg), p.row_splits = static_cast<int>(pr), p.column_splits = static_cast<int>(pc), p.reduction_splits = static_cast<int>(pk);
  p.groups_per_tile = ceil_div(groups, pg);
  p.rows_per_tile = ceil_div(rows, pr);
  p.inputs_per_tile = ceil_div(inputs, pk);
  p.outputs_per_tile = ceil_div(outputs, pc);
  // Tile 0 holds the largest slice of every split: it is the fullest and the slowest.
  const Slice s0 = tile_slice(p, 0);
  const TileBytes b = slice_bytes(s0, c);
  p.weight_bytes = b.weights, p.input_bytes = b.inputs, p.partial_bytes = b.partials, p.overhead_bytes = b.overhead;
  p.max_tile_bytes = b.total();
  const std::uint64_t vb = static_cast<std::uint64_t>(value_bytes(c.precision)), pb = static_cast<std::uint64_t>(partial_bytes(c.precision));
  // Mean over used tiles: the slices' total sizes spread over them.
  const double g = static_cast<double>(groups), r = static_cast<double>(rows), i = static_cast<double>(inputs), o = static_cast<double>(outputs);
  const double total = g * (r * i * static_cast<double>(pc) * static_cast<double>(vb) +   // inputs, once per column split
                            i * o * static_cast<double>(pr) * static_cast<double>(vb) +   // weights, once per row split
                            r * o * static_cast<double>(pk) * static_cast<double>(pb));   // partials, once per reduction split
  p.mean_tile_bytes = total / static_cast<double>(p.tiles_used()) + static_cast<double>(p.overhead_bytes);
  p.supersteps = pk > 1 ? 2 : 1;
  for (int step = 0; step < p.supersteps; ++step) {
    const IpuTileWork w = slice_work(s0, true, step, pk, c);
    p.sync_cycles += c.sync_cycles;
    p.exchange_cycles += w.exchange_cycles;
    p.compute_cycles += w.compute_cycles;
  }
  p.exchange_bytes = static_cast<std::uint64_t>(g * r * i * static_cast<double>(pc)) * vb;
  if (pk > 1) p.exchange_bytes += static_cast<std::uint64_t>(g * r * o * static_cast<double>(pk - 1)) * pb;
  return p;
}

IpuTileWork tile_work(const IpuPlan& p, int tile, int superstep, const IpuUnitConfig& c) {
  if (tile < 0 || tile >= p.tiles_used() || superstep >= p.supersteps) return {};
  return slice_work(tile_slice(p, tile), tile % p.reduction_splits == 0, superstep, p.reduction_splits, c);
}

std::uint64_t tile_bytes(const IpuPlan& p, int tile, const IpuUnitConfig& c) {
  if (tile < 0 || tile >= p.tiles_used()) return 0;
  return slice_bytes(tile_slice(p, tile), c).total();
}

std::uint64_t tile_weight_bytes(const IpuPlan& p, int tile, const IpuUnitConfig& c) {
  if (tile < 0 || tile >= p.tiles_used()) return 0;
  return slice_bytes(tile_slice(p, tile), c).weights;
}

const ParamTable<IpuTiming>& IpuTiming::table() {
  static const ParamTable<IpuTiming> t = [] {
    ParamTable<IpuTiming> p;
    p.integer("tiles_per_process", &IpuTiming::tiles_per_process, 1, 1 << 16, "tiles",
              "tiles one SystemC process simulates (simulation granularity only: every tile is timed on its own slice)");
    return p;
  }();
  return t;
}

IpuPlan plan_matmul(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, const IpuUnitConfig& c, const std::string& layer, std::int64_t groups) {
  if (rows < 1 || inputs < 1 || outputs < 1 || groups < 1) throw Error("layer '" + layer + "' on ipu: an empty product");
  const std::int64_t tiles = c.tiles;
  const std::uint64_t capacity = static_cast<std::uint64_t>(std::llround(c.tile_memory_kib * 1024));
  bool found = false;
  IpuPlan best, smallest;
  bool have_smallest = false;
  for (std::int64_t pg : splits(groups, tiles))
    for (std::int64_t pr : splits(rows, tiles / pg))
      for (std::int64_t pc : splits(outputs, tiles / (pg * pr)))
        for (std::int64_t pk : splits(inputs, tiles / (pg * pr * pc))) {
          const IpuPlan p = evaluate_plan(rows, inputs, outputs, pr, pc, pk, c, groups, pg);
          if (!have_smallest || p.max_tile_bytes < smallest.max_tile_bytes) {
            smallest = p;
            have_smallest = true;
          }
          if (p.max_tile_bytes > capacity) continue;
          if (!found || p.cycles() < best.cycles() || (p.cycles() == best.cycles() && p.tiles_used() < best.tiles_used())) {
            best = p;
            found = true;
          }
        }
  if (!found) {
    const IpuPlan& s = smallest;
    throw Error("layer '" + layer + "' on ipu: out of tile memory: even spread over " + std::to_string(s.tiles_used()) + " of " + std::to_string(tiles) +
                " tiles, tile 0 needs " + std::to_string(s.max_tile_bytes) + " bytes (weights " + std::to_string(s.weight_bytes) + ", inputs " +
                std::to_string(s.input_bytes) + ", partials " + std::to_string(s.partial_bytes) + ", code and vertex state " + std::to_string(s.overhead_bytes) +
                "), a tile has " + std::to_string(capacity));
  }
  return best;
}

namespace {

class IpuSubstrate final : public Substrate {
 public:
  explicit IpuSubstrate(const IpuUnitConfig& c) : c_(c), fp16_(c.precision != "fp32"), fp16_partials_(c.precision == "fp16.16"), stochastic_(c.rounding == "stochastic") {}

  void program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) override {
    // A layer of several blocks runs as one grouped product (IpuPlan): every block plans the
    // whole layer, and block 0 carries its cost.
    name_ = layer.name;
    groups_ = std::max(1, layer.parts);
    carries_cost_ = layer.part == 0;
    // The weights alone must fit now (a dense layer's plan); a convolution is planned again at its
    // first read, when its output positions per image are known (plan_for).
    weights_ = w;
    plans_.clear();
    (void)plan_for(1);
    seed_ = context.seed;
    read_stream_ = stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundRead);
    sum_stream_ = stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundSum);
    const CounterRng rng(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundWeight));
    Draws draws{rng};
    if (fp16_)
      for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index k = 0; k < w.cols(); ++k) weights_(r, k) = round(w(r, k), draws, static_cast<std::uint64_t>(r * w.cols() + k));
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    const PlanUse& use = plan_for(std::max<std::uint64_t>(1, context.rows_per_sample));
    product(x.data(), x.outerStride(), x.rows(), true, context.first_row, use.plan,
            [&](Eigen::Index r, std::int64_t o, float v) { y(r, o) = v; });
    use.add_read(static_cast<std::uint64_t>(x.rows()) / std::max<std::uint64_t>(1, context.rows_per_sample));
  }

  // A convolution on the feature map: each image converted to fp16 once per element (as the
  // device converts a tensor, not once per patch that reads it: keyed by image and element), its
  // patches gathered, the product as multiply() computes it, the bias added in fp32 as the engine
  // adds it after multiply().
  bool convolve(const ConvShape& s, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                const MultiplyContext& context) const override {
    const std::int64_t patches = s.patches(), channels = s.in_channels, kh = s.kernel_h, kw = s.kernel_w, outputs = weights_.rows();
    const std::int64_t image_elements = channels * s.height * s.width, k_size = channels * kh * kw;
    if (k_size != weights_.cols() || s.out_channels != outputs) return false;
    const PlanUse& use = plan_for(static_cast<std::uint64_t>(std::max<std::int64_t>(1, patches)));
    const CounterRng reads_rng(seed_, read_stream_);
    Draws reads{reads_rng};
    const std::uint64_t first_image = context.first_row / static_cast<std::uint64_t>(std::max<std::int64_t>(1, patches));
    // All images' patches as rows of one product (row i·patches + p, the keys multiply() would
    // use), so that the vector lanes are full even for a dense layer's one row per image.
    std::vector<float> image(static_cast<std::size_t>(image_elements));
    std::vector<float> cols(static_cast<std::size_t>(images * patches * k_size));
    for (std::int64_t i = 0; i < images; ++i) {
      const float* xi = x + i * s.x_image_stride;
      const std::uint64_t key = (first_image + static_cast<std::uint64_t>(i)) * static_cast<std::uint64_t>(image_elements);
      for (std::int64_t e = 0; e < image_elements; ++e) image[static_cast<std::size_t>(e)] = fp16_ ? round(xi[e], reads, key + static_cast<std::uint64_t>(e)) : xi[e];
      // Patch p's column (c, a, b) reads image (c, oy·stride + a·dilation − pad, ox·stride + b·dilation − pad), zero outside.
      float* col = cols.data() + i * patches * k_size;
      for (std::int64_t oy = 0; oy < s.out_h; ++oy)
        for (std::int64_t ox = 0; ox < s.out_w; ++ox)
          for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t a = 0; a < kh; ++a) {
              const std::int64_t iy = oy * s.stride_h + a * s.dilation_h - s.pad_top;
              for (std::int64_t b = 0; b < kw; ++b) {
                const std::int64_t ix = ox * s.stride_w + b * s.dilation_w - s.pad_left;
                *col++ = iy >= 0 && iy < s.height && ix >= 0 && ix < s.width ? image[static_cast<std::size_t>((c * s.height + iy) * s.width + ix)] : 0.0f;
              }
            }
    }
    product(cols.data(), k_size, images * patches, false, context.first_row, use.plan, [&](Eigen::Index row, std::int64_t o, float v) {
      const std::int64_t i = row / patches, p = row % patches;
      y[i * s.y_image_stride + o * patches + p] = v + (bias.empty() ? 0.0f : bias[static_cast<std::size_t>(o)]);
    });
    use.add_read(static_cast<std::uint64_t>(images));
    return true;
  }

  std::string kind() const override { return "ipu"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

  void add_counters(std::map<std::string, double>& out) const override {
    // Each plan, and its cycles for the runs the reads made (the functional level's estimate from
    // the plan's formulas; the cycle level simulates the same supersteps).
    std::lock_guard<std::mutex> lock(plans_mutex_);
    for (const auto& entry : plans_) {
      const PlanUse& use = *entry.second;
      if (use.samples.get() == 0 && entry.first != 1) continue;
      const std::uint64_t batch = static_cast<std::uint64_t>(c_.batch);
      const double runs = static_cast<double>((use.samples.get() + batch - 1) / batch);
      out["tiles_used"] = std::max(out["tiles_used"], static_cast<double>(use.plan.tiles_used()));
      out["max_tile_bytes"] = std::max(out["max_tile_bytes"], static_cast<double>(use.plan.max_tile_bytes));
      if (!carries_cost_) continue;
      out["plan_cycles"] += use.plan.cycles() * runs;
      out["exchange_bytes"] += static_cast<double>(use.plan.exchange_bytes) * runs;
    }
  }

 private:
  // The AMP's dot-product depth before its result joins the partial sum (assumed: 16 products).
  static constexpr std::int64_t kAmpDepth = 16;
  static constexpr int kLanes = 4, kOutputs = 4;
  // kLanes floats operated on lane by lane (GCC/Clang vector extension; each lane's arithmetic is
  // the scalar float arithmetic, so the bits are those of the plain loop).
  typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

  // Stochastic draws: 32 random bits per rounding, word index % 4 of Philox block index / 4 (the
  // last block is kept, so consecutive indices cost one block per four) -- enough for every value
  // down to 2^-33, below which a second block supplies 32 more (a half's quantum is 2^-24, so such
  // a value rounds up with probability under 2^-9). A value that is a half already needs no draw.
  struct Draws {
    const CounterRng& rng;
    std::uint64_t cached = ~std::uint64_t{0};
    PhiloxCounter words{};
    std::uint32_t word(std::uint64_t index) {
      if ((index >> 2) != cached) {
        cached = index >> 2;
        words = rng.block(cached);
      }
      return words[index & 3u];
    }
  };
  // The product of `rows` rows of x (`stride` floats apart) with the stored weights, each result
  // handed to store(row, output, value). kLanes rows at a time, the inputs transposed so that every
  // product of one input and one weight is a vector operation across rows; each row's sums keep
  // the model's order (products added one by one within an AMP group, groups into the tile's
  // partial, tiles' partials in tile order), so the bits do not depend on the blocking. Inputs are
  // converted to fp16 here when `round_inputs` (keyed by row and input).
  template <class Store>
  void product(const float* x, std::int64_t stride, std::int64_t rows, bool round_inputs, std::uint64_t first_row, const IpuPlan& plan, Store store) const {
    const std::int64_t inputs = weights_.cols(), outputs = weights_.rows();
    const CounterRng reads_rng(seed_, read_stream_), sums_rng(seed_, sum_stream_);
    Draws reads{reads_rng}, sums{sums_rng};
    const std::int64_t chunk = plan.inputs_per_tile, chunks = plan.reduction_splits;
    // Roundings per output element: one per group of kAmpDepth products (fp16 partials), one per
    // cross-tile addition, one for the result.
    const std::uint64_t steps = static_cast<std::uint64_t>((chunk + kAmpDepth - 1) / kAmpDepth * chunks + chunks + 1);
    std::vector<float> xt(static_cast<std::size_t>(inputs * kLanes));
    for (std::int64_t r0 = 0; r0 < rows; r0 += kLanes) {
      const int lanes = static_cast<int>(std::min<std::int64_t>(kLanes, rows - r0));
      for (int j = 0; j < kLanes; ++j) {
        const std::uint64_t row = first_row + static_cast<std::uint64_t>(r0 + j);
        const float* xr = x + (r0 + j) * stride;
        for (std::int64_t k = 0; k < inputs; ++k) {
          float v = 0;
          if (j < lanes) {
            v = xr[k];
            if (fp16_ && round_inputs) v = round(v, reads, row * static_cast<std::uint64_t>(inputs) + static_cast<std::uint64_t>(k));
          }
          xt[static_cast<std::size_t>(k * kLanes + j)] = v;
        }
      }
      // kOutputs outputs at a time: independent accumulations that keep the vector unit busy.
      std::int64_t o = 0;
      for (; o + kOutputs <= outputs; o += kOutputs) outputs_block<kOutputs>(o, xt.data(), lanes, r0, first_row, steps, chunk, chunks, sums, store);
      for (; o < outputs; ++o) outputs_block<1>(o, xt.data(), lanes, r0, first_row, steps, chunk, chunks, sums, store);
    }
  }

  // Outputs o0 .. o0 + N − 1 for the kLanes rows at r0 (xt: their inputs, transposed).
  template <int N, class Store>
  void outputs_block(std::int64_t o0, const float* xt, int lanes, std::int64_t r0, std::uint64_t first_row, std::uint64_t steps, std::int64_t chunk,
                     std::int64_t chunks, Draws& sums, Store& store) const {
    const std::int64_t inputs = weights_.cols(), outputs = weights_.rows();
    const float* w[N];
    for (int q = 0; q < N; ++q) w[q] = weights_.data() + (o0 + q) * inputs;
    // Rounding number `s` of output o for row `row` draws word row % 4 of block
    // ((row / 4 · steps + s) · outputs + o): four rows of one output share a Philox block.
    std::uint64_t s = 0;
    const auto round_lanes = [&](Lanes& v, int q, std::uint64_t step) {
      for (int j = 0; j < lanes; ++j) {
        const std::uint64_t row = first_row + static_cast<std::uint64_t>(r0 + j);
        const std::uint64_t block = ((row >> 2) * steps + step) * static_cast<std::uint64_t>(outputs) + static_cast<std::uint64_t>(o0 + q);
        v[j] = round(v[j], sums, block << 2 | (row & 3u));
      }
    };
    Lanes total[N] = {};
    for (std::int64_t t = 0; t < chunks; ++t) {
      const std::int64_t begin = t * chunk, end = std::min<std::int64_t>(inputs, begin + chunk);
      Lanes partial[N] = {};
      for (std::int64_t g = begin; g < end; g += kAmpDepth) {
        Lanes group[N] = {};
        const std::int64_t group_end = std::min<std::int64_t>(end, g + kAmpDepth);
        for (std::int64_t k = g; k < group_end; ++k) {
          Lanes xk;
          std::memcpy(&xk, xt + k * kLanes, sizeof xk);
          for (int q = 0; q < N; ++q) group[q] += xk * w[q][k];
        }
        for (int q = 0; q < N; ++q) {
          partial[q] += group[q];
          if (fp16_partials_) round_lanes(partial[q], q, s);
        }
        if (fp16_partials_) ++s;
      }
      for (int q = 0; q < N; ++q) {
        if (t == 0) total[q] = partial[q];
        else total[q] += partial[q];
        if (fp16_partials_ && t > 0) round_lanes(total[q], q, s);
      }
      if (fp16_partials_ && t > 0) ++s;
    }
    for (int q = 0; q < N; ++q) {
      if (fp16_) round_lanes(total[q], q, s);
      for (int j = 0; j < lanes; ++j) store(r0 + j, o0 + q, total[q][j]);
    }
  }

  // A plan and the samples read with it since programming: they make ceil(samples / batch) runs
  // of the compiled program (the cycle level batches a pass's reads the same way).
  struct PlanUse {
    IpuPlan plan;
    Counter samples;
    void add_read(std::uint64_t n) const { samples.add(n); }
  };

  // The plan for `batch` samples of `rows_per_sample` rows each (made once per value; reads of
  // several threads share it).
  const PlanUse& plan_for(std::uint64_t rows_per_sample) const {
    std::lock_guard<std::mutex> lock(plans_mutex_);
    auto it = plans_.find(rows_per_sample);
    if (it == plans_.end()) {
      auto use = std::make_unique<PlanUse>();
      use->plan = plan_matmul(static_cast<std::int64_t>(rows_per_sample) * c_.batch, weights_.cols(), weights_.rows(), c_, name_, groups_);
      it = plans_.emplace(rows_per_sample, std::move(use)).first;
    }
    return *it->second;
  }

  float round(float v, Draws& draws, std::uint64_t index) const {
    const float nearest = fp16::round_nearest(v);
    if (!stochastic_ || nearest == v) return nearest;
    std::uint64_t random = draws.word(index);
    if ((fp16::float_bits(v) & 0x7FFFFFFFu) < 0x2F000000u) random |= static_cast<std::uint64_t>(draws.rng.block((index >> 2) | kSecondDraw)[index & 3u]) << 32;
    return fp16::round_stochastic(v, random);
  }
  static constexpr std::uint64_t kSecondDraw = std::uint64_t{1} << 62;

  IpuUnitConfig c_;
  bool fp16_, fp16_partials_, stochastic_;
  std::string name_;
  int groups_ = 1;
  bool carries_cost_ = true;
  MatrixRM weights_;  // as stored on the tiles (fp16 values held in floats)
  std::uint64_t seed_ = 0, read_stream_ = 0, sum_stream_ = 0;
  mutable std::mutex plans_mutex_;
  mutable std::map<std::uint64_t, std::unique_ptr<PlanUse>> plans_;
};

SubstrateKind ipu_kind() {
  SubstrateKind k = typed_kind("ipu",
                               "A Graphcore-style IPU: each layer planned over the tiles (row, column and reduction splits within every tile's "
                               "memory; the out-of-memory error names the tile and bytes) and computed in fp32 or fp16 with fp32 or fp16 "
                               "partials, fp16 conversions to nearest or stochastic; the cycle level runs the plans' bulk-synchronous supersteps "
                               "(sync, exchange, compute) with the tiles as SystemC processes.",
                               IpuUnitConfig::table(), IpuUnitConfig{}, [](const IpuUnitConfig& c) { return std::make_unique<IpuSubstrate>(c); });
  k.capabilities.cycle_model = true;
  k.timing = IpuTiming::table().specs();
  k.summary_counters = {"tiles_used", "max_tile_bytes", "plan_cycles"};
  return k;
}

}  // namespace

}  // namespace faultline::models::ipu

namespace faultline::models {
FAULTLINE_REGISTER_KIND(ipu, ipu::ipu_kind)
}
