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

// The module must compute what approx_drop_bits describes: an exact twin for 0, a truncating
// one (register drop_bits, reset to the same value) otherwise.
void check_module(int drop, const RtlModuleInfo& info) {
  if ((info.twin == "approx") != (drop > 0) || info.twin == "none")
    throw Error("RTL module " + info.name + " (" + info.twin + " products) does not compute what approx_drop_bits " + std::to_string(drop) +
                " describes");
  if (info.twin == "approx") {
    long long reg = -1;
    for (const auto& r : info.registers)
      if (r.name == "drop_bits") reg = r.fallback;
    if (reg != drop)
      throw Error("approx_drop_bits " + std::to_string(drop) + " differs from RTL module " + info.name + "'s drop_bits reset value " +
                  std::to_string(reg));
  }
}

class RtlInt8Substrate final : public WrappedSubstrate {
 public:
  RtlInt8Substrate(const RtlContext& context, std::unique_ptr<models::Int8Substrate> inner)
      : WrappedSubstrate(std::unique_ptr<models::Substrate>(inner.get())), context_(context), unit_(*context.unit), int8_(*inner.release()) {
    int8_.set_integer_product([this](const std::int8_t* x, std::int64_t rows, std::int32_t* acc) { product(x, rows, acc); });
  }

  void program(const models::MatrixRM& w, const models::LayerInfo& layer, const models::ProgramContext& context) override {
    int8_.program(w, layer, context);
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
          std::vector<RtlMatrixVectorUnit::Transfer> t;
          t.reserve(static_cast<std::size_t>(n + rows));
          for (int i = 0; i < n; ++i) {
            RtlMatrixVectorUnit::Transfer row{true, std::vector<std::int8_t>(static_cast<std::size_t>(m), 0)};
            if (o0 + i < outs)
              for (int j = 0; j < m && i0 + j < ins; ++j) row.lanes[static_cast<std::size_t>(j)] = weights[static_cast<std::size_t>((o0 + i) * ins + i0 + j)];
            t.push_back(std::move(row));
          }
          for (std::int64_t r = 0; r < rows; ++r) {
            RtlMatrixVectorUnit::Transfer v{false, std::vector<std::int8_t>(static_cast<std::size_t>(m), 0)};
            for (int j = 0; j < m && i0 + j < ins; ++j) v.lanes[static_cast<std::size_t>(j)] = x[r * ins + i0 + j];
            t.push_back(std::move(v));
          }
          std::vector<std::int32_t> results;
          results.reserve(static_cast<std::size_t>(rows * n));
          unit_.stream(t, static_cast<std::size_t>(rows), results, {}, static_cast<std::uint64_t>(t.size()) * 64 + 1000);
          if (results.size() != static_cast<std::size_t>(rows * n))
            throw Error("RTL module " + unit_.info().name + " returned " + std::to_string(results.size() / static_cast<std::size_t>(n)) + " of " +
                        std::to_string(rows) + " results");
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
    c["peak_macs"] = static_cast<double>(cycles) * n * m;
    c["layer_ops"] = 1;
    add_own(c);
  }

  RtlContext context_;
  RtlMatrixVectorUnit& unit_;
  models::Int8Substrate& int8_;  // owned by the base (its inner substrate)
};

std::unique_ptr<models::Substrate> wrap_int8(const RtlContext& context, std::unique_ptr<models::Substrate> functional) {
  auto* int8 = dynamic_cast<models::Int8Substrate*>(functional.get());
  if (int8 == nullptr) throw std::logic_error("the int8_digital RTL binding got a " + functional->kind() + " substrate");
  try {
    check_module(int8->approx_drop_bits(), context.unit->info());
  } catch (const Error& e) {
    throw Error("unit " + context.unit_name + ": " + e.what());
  }
  functional.release();
  return std::make_unique<RtlInt8Substrate>(context, std::unique_ptr<models::Int8Substrate>(int8));
}

void check_int8(const models::Params& params, const RtlModuleInfo& info) {
  check_module(models::Int8DigitalConfig::table().read(params).approx_drop_bits, info);
}

}  // namespace

FAULTLINE_REGISTER_RTL_BINDING(int8_digital, RtlBinding{&check_int8, &wrap_int8})

}  // namespace faultline::sim
