#include "models/ipu_substrate.h"

#include <algorithm>
#include <cmath>
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

IpuPlan evaluate_plan(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, std::int64_t pr, std::int64_t pc, std::int64_t pk, const IpuUnitConfig& c) {
  IpuPlan p;
  p.rows = rows, p.inputs = inputs, p.outputs = outputs;
  p.row_splits = static_cast<int>(pr), p.column_splits = static_cast<int>(pc), p.reduction_splits = static_cast<int>(pk);
  p.rows_per_tile = ceil_div(rows, pr);
  p.inputs_per_tile = ceil_div(inputs, pk);
  p.outputs_per_tile = ceil_div(outputs, pc);
  const std::uint64_t vb = static_cast<std::uint64_t>(value_bytes(c.precision)), pb = static_cast<std::uint64_t>(partial_bytes(c.precision));
  const auto r = static_cast<std::uint64_t>(p.rows_per_tile), i = static_cast<std::uint64_t>(p.inputs_per_tile), o = static_cast<std::uint64_t>(p.outputs_per_tile);
  p.weight_bytes = i * o * vb;
  p.input_bytes = r * i * vb;
  p.partial_bytes = r * o * pb;
  p.overhead_bytes = static_cast<std::uint64_t>(std::llround(c.tile_overhead_kib * 1024));
  p.max_tile_bytes = p.weight_bytes + p.input_bytes + p.partial_bytes + p.overhead_bytes;
  // Mean over used tiles: the slices' total sizes spread over them.
  const double total = static_cast<double>(rows) * static_cast<double>(inputs) * static_cast<double>(pc) * static_cast<double>(vb) +  // inputs, once per column split
                       static_cast<double>(inputs) * static_cast<double>(outputs) * static_cast<double>(pr) * static_cast<double>(vb) +  // weights, once per row split
                       static_cast<double>(rows) * static_cast<double>(outputs) * static_cast<double>(pk) * static_cast<double>(pb);
  p.mean_tile_bytes = total / static_cast<double>(p.tiles_used()) + static_cast<double>(p.overhead_bytes);
  // Superstep 1: sync, inputs exchanged to their tiles, every tile's MACs (its output elements
  // shared by the workers, each worker's products at the AMP rate per worker).
  const int amp = c.precision == "fp32" ? c.amp_macs_fp32 : c.amp_macs_fp16;
  const std::uint64_t elements = r * o;
  const std::uint64_t per_worker = (elements + static_cast<std::uint64_t>(c.workers) - 1) / static_cast<std::uint64_t>(c.workers);
  p.sync_cycles = c.sync_cycles;
  p.exchange_cycles = c.exchange_latency + std::ceil(static_cast<double>(p.input_bytes) / c.exchange_bytes_per_cycle);
  p.compute_cycles = std::ceil(static_cast<double>(per_worker * i) * c.workers / amp);
  p.exchange_bytes = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(inputs) * static_cast<std::uint64_t>(pc) * vb;
  p.supersteps = 1;
  if (pk > 1) {
    // Superstep 2: the partials of each output slice go to one reducer tile, which adds pk of them
    // per element (one addition per element per partial, spread over the workers).
    p.supersteps = 2;
    p.sync_cycles += c.sync_cycles;
    p.exchange_cycles += c.exchange_latency + std::ceil(static_cast<double>(p.partial_bytes * static_cast<std::uint64_t>(pk - 1)) / c.exchange_bytes_per_cycle);
    p.compute_cycles += static_cast<double>(per_worker * static_cast<std::uint64_t>(pk - 1));
    p.exchange_bytes += static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(outputs) * static_cast<std::uint64_t>(pk - 1) * pb;
  }
  return p;
}

IpuPlan plan_matmul(std::int64_t rows, std::int64_t inputs, std::int64_t outputs, const IpuUnitConfig& c, const std::string& layer) {
  if (rows < 1 || inputs < 1 || outputs < 1) throw Error("layer '" + layer + "' on ipu: an empty product");
  const std::int64_t tiles = c.tiles;
  const std::uint64_t capacity = static_cast<std::uint64_t>(std::llround(c.tile_memory_kib * 1024));
  bool found = false;
  IpuPlan best, smallest;
  bool have_smallest = false;
  for (std::int64_t pr : splits(rows, tiles))
    for (std::int64_t pc : splits(outputs, tiles / pr))
      for (std::int64_t pk : splits(inputs, tiles / (pr * pc))) {
        const IpuPlan p = evaluate_plan(rows, inputs, outputs, pr, pc, pk, c);
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
    name_ = layer.name + (layer.part ? " (group " + std::to_string(layer.part) + ")" : "");
    plan_ = plan_matmul(c_.batch, w.cols(), w.rows(), c_, name_);
    seed_ = context.seed;
    read_stream_ = stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundRead);
    sum_stream_ = stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundSum);
    const CounterRng rng(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::FpRoundWeight));
    weights_ = w;
    if (fp16_)
      for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index k = 0; k < w.cols(); ++k) weights_(r, k) = round(w(r, k), rng, static_cast<std::uint64_t>(r * w.cols() + k));
    runs_.reset();
  }

  void multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext& context) const override {
    const Eigen::Index inputs = weights_.cols(), outputs = weights_.rows();
    const CounterRng reads(seed_, read_stream_), sums(seed_, sum_stream_);
    const std::int64_t chunk = plan_.inputs_per_tile;
    const std::int64_t chunks = plan_.reduction_splits;
    // Roundings per output element: one per group of kAmpDepth products (fp16 partials), one per
    // cross-tile addition, one for the result.
    const std::uint64_t steps = static_cast<std::uint64_t>((chunk + kAmpDepth - 1) / kAmpDepth * chunks + chunks + 1);
    std::vector<float> xr(static_cast<std::size_t>(inputs));
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      const std::uint64_t row = context.first_row + static_cast<std::uint64_t>(r);
      for (Eigen::Index k = 0; k < inputs; ++k)
        xr[static_cast<std::size_t>(k)] = fp16_ ? round(x(r, k), reads, row * static_cast<std::uint64_t>(inputs) + static_cast<std::uint64_t>(k)) : x(r, k);
      for (Eigen::Index o = 0; o < outputs; ++o) {
        const float* w = weights_.data() + o * inputs;
        std::uint64_t step = (row * static_cast<std::uint64_t>(outputs) + static_cast<std::uint64_t>(o)) * steps;
        // Each reduction slice on its tile: products accumulated in fp32 by the AMP, kAmpDepth at a
        // time; with fp16 partials the running sum is stored as fp16 after each group.
        float total = 0;
        for (std::int64_t t = 0; t < chunks; ++t) {
          const std::int64_t begin = t * chunk, end = std::min<std::int64_t>(inputs, begin + chunk);
          float partial = 0;
          for (std::int64_t g = begin; g < end; g += kAmpDepth) {
            float group = 0;
            for (std::int64_t k = g; k < std::min<std::int64_t>(end, g + kAmpDepth); ++k) group += xr[static_cast<std::size_t>(k)] * w[k];
            partial += group;
            if (fp16_partials_) partial = round(partial, sums, step++);
          }
          // The reducer adds the tiles' partials in tile order.
          total = t == 0 ? partial : total + partial;
          if (fp16_partials_ && t > 0) total = round(total, sums, step++);
        }
        y(r, o) = fp16_ ? round(total, sums, step) : total;
      }
    }
    runs_.add(static_cast<std::uint64_t>((x.rows() + c_.batch - 1) / c_.batch));
  }

  std::string kind() const override { return "ipu"; }
  Eigen::Index outputs() const override { return weights_.rows(); }
  Eigen::Index inputs() const override { return weights_.cols(); }

  void add_counters(std::map<std::string, double>& out) const override {
    // The plan, and its cycles for the runs of `batch` rows the reads made (the functional
    // level's estimate; no SystemC model of the tiles yet).
    out["tiles_used"] = std::max(out["tiles_used"], static_cast<double>(plan_.tiles_used()));
    out["max_tile_bytes"] = std::max(out["max_tile_bytes"], static_cast<double>(plan_.max_tile_bytes));
    out["plan_cycles"] += plan_.cycles() * static_cast<double>(runs_.get());
    out["exchange_bytes"] += static_cast<double>(plan_.exchange_bytes) * static_cast<double>(runs_.get());
  }

 private:
  // The AMP's dot-product depth before its result joins the partial sum (assumed: 16 products).
  static constexpr std::int64_t kAmpDepth = 16;

  float round(float v, const CounterRng& rng, std::uint64_t index) const {
    if (!stochastic_) return fp16::to_float(fp16::from_float(v));
    const PhiloxCounter w = rng.block(index);
    return fp16::to_float(fp16::from_float_stochastic(v, static_cast<std::uint64_t>(w[0]) | static_cast<std::uint64_t>(w[1]) << 32));
  }

  IpuUnitConfig c_;
  bool fp16_, fp16_partials_, stochastic_;
  std::string name_;
  IpuPlan plan_;
  MatrixRM weights_;  // as stored on the tiles (fp16 values held in floats)
  std::uint64_t seed_ = 0, read_stream_ = 0, sum_stream_ = 0;
  Counter runs_;
};

SubstrateKind ipu_kind() {
  SubstrateKind k = typed_kind("ipu",
                               "A Graphcore-style IPU: each layer planned over the tiles (row, column and reduction splits within every tile's "
                               "memory; the out-of-memory error names the tile and bytes) and computed in fp32 or fp16 with fp32 or fp16 "
                               "partials, fp16 conversions to nearest or stochastic (functional level; no cycle model yet).",
                               IpuUnitConfig::table(), IpuUnitConfig{}, [](const IpuUnitConfig& c) { return std::make_unique<IpuSubstrate>(c); });
  return k;
}

}  // namespace

}  // namespace faultline::models::ipu

namespace faultline::models {
FAULTLINE_REGISTER_KIND(ipu, ipu::ipu_kind)
}
