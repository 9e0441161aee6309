// The RTL binding of the int8_digital kind: its integer products run on an RTL matrix-vector
// unit (rtl/README.md), tile by tile (N outputs × M inputs per tile, partial sums added in
// int32), while quantization and rescaling stay the behavioural model's (models/int8_digital.h).
#include <algorithm>

#include "models/error.h"
#include "models/int8_digital.h"
#include "sim/cycle_level.h"
#include "sim/rtl_level.h"
#include "sim/rtl_unit.h"
#include "sim/wrapped_substrate.h"

namespace faultline::sim {
namespace {

// What the unit's integer products are when it names an RTL module. The behavioural model
// (models::int8_matrix_vector: exact, or truncated products for approx_drop_bits > 0) unless the
// module's twin at the unit's register values computes something else (a shift, a saturation, a
// different multiplier): then the twin defines them, at the functional level (twin_tiled_product)
// as at the RTL level, and approx_drop_bits must be 0 (two descriptions of one multiplier that
// contradict each other are refused). The twin is compared with the model on probe tiles: random
// codes, the extremes -128/127 (the largest magnitudes a product and a sum reach), all-zero and
// sparse vectors. Returns whether the twin defines the products; a module without a twin cannot
// be checked and is refused.
bool twin_defines_products(int drop, const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers) {
  if (info.twin_function == nullptr)
    throw Error("RTL module " + info.name + " has no twin (module.txt: twin = none), so nothing shows what its products are");
  const std::string difference = twin_difference_from_int8(info, registers, drop, "int8_digital model");
  if (difference.empty()) return false;
  if (drop == 0) return true;
  std::string regs;
  for (const auto& r : registers) regs += (regs.empty() ? "" : ", ") + r.name + " = " + std::to_string(r.value);
  throw Error("RTL module " + info.name + "'s twin (" + info.twin + (regs.empty() ? "" : ", registers " + regs) + ") does not compute what approx_drop_bits " +
              std::to_string(drop) + " describes: " + difference + " (set approx_drop_bits to 0 to let the twin define the products)");
}

void check_module(int drop, const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers) {
  twin_defines_products(drop, info, registers);
}

class RtlInt8Substrate final : public WrappedSubstrate {
 public:
  RtlInt8Substrate(const RtlContext& context, std::unique_ptr<models::Int8Substrate> inner)
      : WrappedSubstrate(std::unique_ptr<models::Substrate>(inner.get())), context_(context), unit_(*context.unit), int8_(*inner.release()) {
    int8_.set_integer_product([this](const std::int8_t* x, std::int64_t rows, std::int32_t* acc) { product(x, rows, acc); });
  }

  void program(const models::MatrixRM& w, const models::LayerInfo& layer, const models::ProgramContext& context) override {
    int8_.program(w, layer, context);
    layer_ = layer.name + (layer.part ? " (block " + std::to_string(layer.part) + ")" : "");
    clear_own();
  }
  void multiply(const Eigen::Ref<const models::MatrixRM>& x, Eigen::Ref<models::MatrixRM> y,
                const models::MultiplyContext& context) const override {
    int8_.multiply(x, y, context);
  }

 private:
  // acc = x · Wᵀ on the RTL: for every tile of N outputs × M inputs, load its weight rows (zero
  // beyond the layer's edge), stream the rows' M-lane slices and add the int32 results.
  void product(const std::int8_t* x, std::int64_t rows, std::int32_t* acc) const {
    const int n = unit_.info().outputs, m = unit_.info().inputs;
    const std::int64_t outs = int8_.outputs(), ins = int8_.inputs();
    const std::vector<std::int8_t>& weights = int8_.weight_codes();
    std::fill(acc, acc + rows * outs, 0);
    std::uint64_t cycles = 0, transfers = 0, loads = 0;
    context_.run([&] {
      const std::uint64_t start = unit_.cycles();
      for (std::int64_t o0 = 0; o0 < outs; o0 += n)
        for (std::int64_t i0 = 0; i0 < ins; i0 += m) {
          RtlMatrixVectorUnit::TransferList t(m);
          t.reserve(static_cast<std::size_t>(n + rows));
          const int width = static_cast<int>(std::min<std::int64_t>(m, ins - i0));  // lanes past the layer's edge stay 0
          for (int i = 0; i < n; ++i) {
            std::int8_t* row = t.add(true);
            if (o0 + i < outs) std::copy_n(weights.data() + (o0 + i) * ins + i0, width, row);
          }
          for (std::int64_t r = 0; r < rows; ++r) std::copy_n(x + r * ins + i0, width, t.add(false));
          std::vector<std::int32_t> results;
          results.reserve(static_cast<std::size_t>(rows * n));
          // --check also holds out_ready low in bursts (24 of every 64 cycles) so that output FIFOs
          // fill as behind a slow receiver; cycle counts then include those stalls.
          const auto stalls = [](std::uint64_t cycle) { return cycle % 64 < 24; };
          unit_.stream(t, static_cast<std::size_t>(rows), results, context_.check ? std::function<bool(std::uint64_t)>(stalls) : nullptr,
                       unit_.open_cycle_bound(t.size()));
          if (results.size() != static_cast<std::size_t>(rows * n))
            throw Error("unit " + context_.unit_name + ", layer " + layer_ + ": RTL module " + unit_.info().name + " returned " +
                        std::to_string(results.size() / static_cast<std::size_t>(n)) + " of " + std::to_string(rows) + " results within " +
                        std::to_string(unit_.open_cycle_bound(t.size())) + " cycles (module.txt max_cycles_per_vector = " +
                        std::to_string(unit_.info().max_cycles_per_vector) + ")");
          if (context_.check) check_tile(t, results, o0, i0);
          for (std::int64_t r = 0; r < rows; ++r)
            for (int i = 0; i < n && o0 + i < outs; ++i) acc[r * outs + o0 + i] += results[static_cast<std::size_t>(r * n + i)];
          transfers += t.size();
          ++loads;
        }
      cycles = unit_.cycles() - start;
    });
    Counters c;
    c["cycles"] = static_cast<double>(cycles);
    c["time_ns"] = static_cast<double>(cycles) * 1e3 / context_.clock_mhz;
    c["rtl_transfers"] = static_cast<double>(transfers);
    c["rtl_weight_loads"] = static_cast<double>(loads);
    c["macs"] = static_cast<double>(rows * ins * outs);
    c["peak_macs"] = static_cast<double>(cycles) * static_cast<double>(unit_.info().macs_per_cycle);
    c["layer_ops"] = 1;
    add_own(c);
  }

  // --check: the twin beside the RTL on this tile (weights t[0..n), vectors after them).
  void check_tile(const RtlMatrixVectorUnit::TransferList& t, const std::vector<std::int32_t>& results, std::int64_t o0,
                  std::int64_t i0) const {
    const RtlModuleInfo& info = unit_.info();
    const int n = info.outputs, m = info.inputs;
    std::vector<std::int8_t> w(static_cast<std::size_t>(n * m));
    for (int i = 0; i < n; ++i) std::copy_n(t.lanes(static_cast<std::size_t>(i)), m, w.begin() + i * m);
    const rtl::TwinUnit twin{n, m, w.data(), context_.registers};
    std::vector<std::int32_t> expected(static_cast<std::size_t>(n));
    for (std::size_t v = static_cast<std::size_t>(n); v < t.size(); ++v) {
      info.twin_function(twin, t.lanes(v), expected.data());
      const std::int32_t* got = results.data() + (v - static_cast<std::size_t>(n)) * static_cast<std::size_t>(n);
      if (std::equal(expected.begin(), expected.end(), got)) continue;
      const auto lanes = [](const auto* p, int count) {
        std::string s = "[";
        for (int k = 0; k < count; ++k) s += (k ? " " : "") + std::to_string(static_cast<int>(p[k]));
        return s + "]";
      };
      throw Error("--check: unit " + context_.unit_name + " (RTL module " + info.name + "), layer " + layer_ + ", tile outputs " +
                  std::to_string(o0) + ".." + std::to_string(o0 + n - 1) + " x inputs " + std::to_string(i0) + ".." + std::to_string(i0 + m - 1) +
                  ", vector " + std::to_string(v - static_cast<std::size_t>(n)) + ": x = " + lanes(t.lanes(v), m) + ", twin " +
                  lanes(expected.data(), n) + ", RTL " + lanes(got, n));
    }
  }

  RtlContext context_;
  std::string layer_;
  RtlMatrixVectorUnit& unit_;
  models::Int8Substrate& int8_;  // owned by the base (its inner substrate)
};

std::unique_ptr<models::Substrate> wrap_int8(const RtlContext& context, std::unique_ptr<models::Substrate> functional) {
  auto* int8 = dynamic_cast<models::Int8Substrate*>(functional.get());
  if (int8 == nullptr) throw std::logic_error("the int8_digital RTL binding got a " + functional->kind() + " substrate");
  try {
    check_module(int8->approx_drop_bits(), context.unit->info(), *context.registers);
  } catch (const Error& e) {
    throw Error("unit " + context.unit_name + ": " + e.what());
  }
  functional.release();
  return std::make_unique<RtlInt8Substrate>(context, std::unique_ptr<models::Int8Substrate>(int8));
}

void check_int8(const models::Params& params, const RtlModuleInfo& info, const std::vector<rtl::RegisterValue>& registers) {
  check_module(models::Int8DigitalConfig::table().read(params).approx_drop_bits, info, registers);
}

std::unique_ptr<models::Substrate> functional_int8(const models::Params&, const RtlModuleInfo& info,
                                                   const std::vector<rtl::RegisterValue>& registers,
                                                   std::unique_ptr<models::Substrate> functional) {
  auto* int8 = dynamic_cast<models::Int8Substrate*>(functional.get());
  if (int8 == nullptr) throw std::logic_error("the int8_digital RTL binding got a " + functional->kind() + " substrate");
  if (info.twin_function == nullptr || !twin_defines_products(int8->approx_drop_bits(), info, registers)) return functional;
  // The substrate owns the product, so `int8` outlives it.
  int8->set_integer_product([int8, info, registers](const std::int8_t* x, std::int64_t rows, std::int32_t* acc) {
    twin_tiled_product(info, registers, int8->weight_codes().data(), int8->outputs(), int8->inputs(), x, rows, acc);
  });
  return functional;
}

}  // namespace

FAULTLINE_REGISTER_RTL_BINDING(int8_digital, RtlBinding{&check_int8, &wrap_int8, &functional_int8})

}  // namespace faultline::sim
