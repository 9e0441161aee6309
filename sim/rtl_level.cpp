#include "sim/rtl_level.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "models/error.h"
#include "models/int8_digital.h"
#include "sim/cycle_level.h"
#include "sim/rtl_unit.h"
#include "sim/wrapped_substrate.h"

namespace faultline::sim {

namespace {

// Runs jobs inside a SystemC thread: each run() notifies it and simulates until the job is done.
class Executor : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Executor);
  explicit Executor(const sc_core::sc_module_name& name) : sc_module(name) { SC_THREAD(loop); }
  sc_core::sc_event work;
  std::function<void()> job;
  bool done = false;

 private:
  void loop() {
    for (;;) {
      wait(work);
      if (job) job();
      done = true;
    }
  }
};

}  // namespace

struct RtlSimulation::Impl {
  std::vector<RtlUnitSpec> specs;
  std::unique_ptr<Executor> executor;
  std::vector<std::unique_ptr<RtlMatrixVectorUnit>> units;
  std::thread::id owner;
  std::mutex mutex;

  void run(const std::function<void()>& job) {
    if (std::this_thread::get_id() != owner)
      throw Error("the RTL level runs the simulation in-line: evaluate on the thread that created it (--threads 1)");
    std::lock_guard<std::mutex> lock(mutex);
    executor->job = job;
    executor->done = false;
    executor->work.notify(sc_core::SC_ZERO_TIME);
    try {
      sc_core::sc_start();
    } catch (const sc_core::sc_report& e) {
      throw Error(std::string("SystemC simulation failed: ") + e.what());
    }
    executor->job = nullptr;
    if (!executor->done) throw Error("the RTL simulation stopped before the operation finished");
  }
};

namespace {

// int8_digital whose integer products run on an RTL matrix-vector unit.
class RtlInt8Substrate final : public WrappedSubstrate {
 public:
  RtlInt8Substrate(RtlSimulation::Impl& sim, std::size_t unit, std::unique_ptr<models::Int8Substrate> inner)
      : WrappedSubstrate(std::unique_ptr<models::Substrate>(inner.get())), sim_(sim), unit_(*sim.units[unit]),
        clock_mhz_(sim.specs[unit].clock_mhz), int8_(*inner.release()) {
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
    sim_.run([&] {
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
    c["time_ns"] = static_cast<double>(cycles) * 1e3 / clock_mhz_;
    c["rtl_transfers"] = static_cast<double>(transfers);
    c["rtl_weight_loads"] = static_cast<double>(loads);
    c["macs"] = static_cast<double>(rows * ins * outs);
    c["peak_macs"] = static_cast<double>(cycles) * n * m;
    c["layer_ops"] = 1;
    add_own(c);
  }

  RtlSimulation::Impl& sim_;
  RtlMatrixVectorUnit& unit_;
  double clock_mhz_;
  models::Int8Substrate& int8_;  // owned by the base (its inner substrate)
};

}  // namespace

RtlSimulation::RtlSimulation(std::vector<RtlUnitSpec> units, const std::string& vcd_path, bool fst) : impl_(std::make_unique<Impl>()) {
  claim_simulation("the RTL level");
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  impl_->specs = std::move(units);
  impl_->owner = std::this_thread::get_id();
  try {
    impl_->executor = std::make_unique<Executor>("rtl_level");
    for (const auto& spec : impl_->specs) {
      const RtlModuleKind& kind = find_rtl_module(spec.rtl);
      std::string name = spec.name;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
      impl_->units.push_back((fst ? kind.create_fst : kind.create)(name.c_str(), sc_core::sc_time(1e6 / spec.clock_mhz, sc_core::SC_PS)));
    }
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
    if (!vcd_path.empty()) {
      // One waveform per unit: FILE, or FILE with the unit's name before ".vcd" when there are several.
      for (std::size_t u = 0; u < impl_->units.size(); ++u) {
        std::string path = vcd_path;
        if (impl_->units.size() > 1) {
          const std::string ext = fst ? ".fst" : ".vcd";
          const std::string stem = path.size() > 4 && path.substr(path.size() - 4) == ext ? path.substr(0, path.size() - 4) : path;
          path = stem + "." + impl_->units[u]->basename() + ext;
        }
        try {
          impl_->units[u]->open_rtl_trace(path);
        } catch (const std::runtime_error& e) {
          throw Error(e.what());
        }
      }
    }
    // Reset every unit once and write its registers' reset values (the contract's start state).
    impl_->run([this] {
      for (const auto& u : impl_->units) {
        u->reset();
        for (const auto& r : u->info().registers) u->write_register(r.address, static_cast<std::uint32_t>(r.fallback));
      }
    });
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC elaboration failed: ") + e.what());
  }
}

RtlSimulation::~RtlSimulation() = default;

std::unique_ptr<models::Substrate> RtlSimulation::wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional) {
  if (unit >= impl_->units.size()) throw std::out_of_range("RtlSimulation::wrap: no unit " + std::to_string(unit));
  auto* int8 = dynamic_cast<models::Int8Substrate*>(functional.get());
  if (int8 == nullptr) throw Error("unit " + impl_->specs[unit].name + ": only int8_digital runs on RTL, not " + functional->kind());
  const RtlModuleInfo& info = impl_->units[unit]->info();
  const int drop = int8->approx_drop_bits();
  if ((info.twin == "exact" && drop != 0) || (info.twin == "approx" && drop == 0))
    throw Error("unit " + impl_->specs[unit].name + ": RTL module " + info.name + " (" + info.twin + " products) does not implement approx_drop_bits " +
                std::to_string(drop));
  if (info.twin == "approx") {
    long long reg = -1;
    for (const auto& r : info.registers)
      if (r.name == "drop_bits") reg = r.fallback;
    if (reg != drop)
      throw Error("unit " + impl_->specs[unit].name + ": approx_drop_bits " + std::to_string(drop) + " differs from the RTL's drop_bits reset value " +
                  std::to_string(reg));
  }
  functional.release();
  return std::make_unique<RtlInt8Substrate>(*impl_, unit, std::unique_ptr<models::Int8Substrate>(int8));
}

}  // namespace faultline::sim
