#include "sim/cycle_level.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <tuple>

#include "models/error.h"
#include "models/files.h"
#include "sim/operation.h"
#include "sim/unit_system.h"
#include "sim/wrapped_substrate.h"

namespace faultline::sim {

namespace {

// Drives recorded operations through the unit systems, one after another, each on an idle unit.
class Driver : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Driver);
  explicit Driver(const sc_core::sc_module_name& name, const std::vector<UnitSpec>& specs) : sc_module(name) {
    for (const auto& spec : specs) units.push_back(make_unit_system(spec));
    SC_THREAD(drive);
  }

  std::vector<std::unique_ptr<UnitSystem>> units;
  sc_core::sc_event work;
  std::vector<Operation>* queue = nullptr;

 private:
  void drive() {
    for (;;) {
      wait(work);
      if (queue)
        for (Operation& op : *queue) run(op);
    }
  }

  void run(Operation& op) {
    UnitSystem& unit = *units[op.unit];
    Counters& r = op.result;
    unit.counters.attribute_to(&r);
    const sc_core::sc_time start = sc_core::sc_time_stamp();
    unit.busy.write(true);
    unit.current_layer.write(op.layer);
    unit.execute(op);
    unit.busy.write(false);
    unit.counters.attribute_to(nullptr);
    const double cycles = (sc_core::sc_time_stamp() - start) / unit.period();
    unit.energy_pj.write(unit.counters.total("energy_pj"));
    unit.macs.write(static_cast<sc_dt::uint64>(unit.counters.total("macs")));
    const double time_ns = cycles * 1e3 / unit.clock_mhz();
    if (op.type == Operation::Type::Program) {
      const double energy = r.count("energy_pj") ? r["energy_pj"] : 0.0;
      r.erase("energy_pj");
      r["program_cycles"] = cycles;
      r["program_time_ns"] = time_ns;
      r["program_energy_pj"] = energy;
    } else {
      r["cycles"] = cycles;
      r["time_ns"] = time_ns;
      r["peak_macs"] = cycles * unit.peak_macs_per_cycle(op);
      r["layer_ops"] = 1;
      if (!r.count("energy_pj")) r["energy_pj"] = 0;
      if (!r.count("macs")) r["macs"] = 0;
    }
  }
};

}  // namespace

// A functional substrate whose programming and reads are also recorded for the simulation.
class TimedSubstrate final : public WrappedSubstrate {
 public:
  TimedSubstrate(CycleSimulation::Impl& sim, std::size_t unit, bool keep_weights, std::unique_ptr<models::Substrate> inner)
      : WrappedSubstrate(std::move(inner)), sim_(sim), unit_(unit), keep_weights_(keep_weights) {}

  void program(const models::MatrixRM& weights, const models::LayerInfo& layer, const models::ProgramContext& context) override;
  void multiply(const Eigen::Ref<const models::MatrixRM>& x, Eigen::Ref<models::MatrixRM> y,
                const models::MultiplyContext& context) const override;
  bool convolve(const models::ConvShape& shape, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                const models::MultiplyContext& context) const override;
  // The simulation's figures for one of this substrate's operations.
  void attribute(const Counters& counters) const { add_own(counters); }

 private:
  Operation operation(Operation::Type type) const {
    Operation op;
    op.type = type;
    op.unit = unit_;
    op.layer = layer_.index;
    op.part = layer_.part;
    op.parts = layer_.parts;
    op.layer_name = layer_.name;
    op.inputs = inner().inputs();
    op.outputs = inner().outputs();
    op.owner = this;
    return op;
  }

  CycleSimulation::Impl& sim_;
  std::size_t unit_;
  bool keep_weights_;
  models::LayerInfo layer_;
};

struct CycleSimulation::Impl {
  std::vector<UnitSpec> specs;
  std::unique_ptr<Driver> driver;
  sc_core::sc_trace_file* vcd = nullptr;
  std::string vcd_file;  // with the ".vcd" SystemC appends
  std::mutex mutex;
  std::vector<Operation> pending;

  void record(Operation op) {
    std::lock_guard<std::mutex> lock(mutex);
    pending.push_back(std::move(op));
  }
};

void TimedSubstrate::program(const models::MatrixRM& weights, const models::LayerInfo& layer, const models::ProgramContext& context) {
  inner().program(weights, layer, context);
  layer_ = layer;
  clear_own();
  Operation op = operation(Operation::Type::Program);
  op.seed = context.seed;
  op.trial = context.trial;
  Counters device;
  inner().add_counters(device);
  // Cells and write attempts as the behavioural model counted them; kinds without a device
  // model (SRAM synapses) write every weight once.
  op.cells = device.count("cells") ? device["cells"] : static_cast<double>(weights.size());
  op.write_attempts = device.count("write_verify_iterations") ? device["write_verify_iterations"] : op.cells;
  if (keep_weights_) op.weights = weights;
  sim_.record(std::move(op));
}

void TimedSubstrate::multiply(const Eigen::Ref<const models::MatrixRM>& x, Eigen::Ref<models::MatrixRM> y,
                              const models::MultiplyContext& context) const {
  inner().multiply(x, y, context);
  Operation op = operation(Operation::Type::Multiply);
  op.first_row = context.first_row;
  op.vectors = x.rows();
  op.rows_per_sample = context.rows_per_sample;
  sim_.record(std::move(op));
}

bool TimedSubstrate::convolve(const models::ConvShape& shape, const float* x, std::int64_t images, const std::vector<float>& bias, float* y,
                              const models::MultiplyContext& context) const {
  if (!inner().convolve(shape, x, images, bias, y, context)) return false;
  Operation op = operation(Operation::Type::Multiply);
  op.first_row = context.first_row;
  op.vectors = images;
  op.rows_per_sample = static_cast<std::uint64_t>(shape.patches());
  op.convolution = true;
  op.shape = shape;
  sim_.record(std::move(op));
  return true;
}

namespace {
std::mutex claim_mutex;
std::string claimed_by;
}  // namespace

void claim_simulation(const std::string& who) {
  std::lock_guard<std::mutex> lock(claim_mutex);
  if (!claimed_by.empty())
    throw Error("SystemC elaborates one simulation per process: " + who + " cannot start after " + claimed_by);
  claimed_by = who;
}

CycleSimulation::CycleSimulation(std::vector<UnitSpec> units, const std::string& vcd_path) : impl_(std::make_unique<Impl>()) {
  claim_simulation("the cycle level");
  impl_->specs = std::move(units);
  // SystemC prints its banner when the kernel starts unless told not to; results go to stdout.
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  try {
    impl_->driver = std::make_unique<Driver>("faultline", impl_->specs);
    if (!vcd_path.empty()) {
      std::string base = vcd_path;
      if (base.size() > 4 && base.substr(base.size() - 4) == ".vcd") base.resize(base.size() - 4);  // SystemC appends ".vcd"
      impl_->vcd_file = base + ".vcd";
      // SystemC does not report a file it cannot open, and later divides by zero closing it.
      check_output_file(impl_->vcd_file, "--vcd");
      sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);  // no "timescale set" notes
      impl_->vcd = sc_core::sc_create_vcd_trace_file(base.c_str());
      if (impl_->vcd == nullptr) throw Error(vcd_path + ": cannot create the waveform file");
      impl_->vcd->set_time_unit(1, sc_core::SC_NS);
      for (const auto& u : impl_->driver->units) u->trace(impl_->vcd);
    }
    // Elaborate and initialize now, so that the driver waits for work before the first
    // notification (a notification made before initialization would be lost).
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC elaboration failed: ") + e.what());
  }
}

CycleSimulation::~CycleSimulation() {
  if (impl_->vcd) sc_core::sc_close_vcd_trace_file(impl_->vcd);
}

std::vector<std::string> CycleSimulation::close_waveforms() {
  if (impl_->vcd == nullptr) return impl_->vcd_file.empty() ? std::vector<std::string>{} : std::vector<std::string>{impl_->vcd_file};
  sc_core::sc_close_vcd_trace_file(impl_->vcd);
  impl_->vcd = nullptr;
  check_written_file(impl_->vcd_file, true);
  return {impl_->vcd_file};
}

std::size_t CycleSimulation::units() const { return impl_->specs.size(); }
const UnitSpec& CycleSimulation::unit(std::size_t index) const { return impl_->specs.at(index); }

std::unique_ptr<models::Substrate> CycleSimulation::wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional) {
  if (unit >= impl_->specs.size()) throw std::out_of_range("CycleSimulation::wrap: no unit " + std::to_string(unit));
  const CycleModel* model = find_cycle_model(impl_->specs[unit].kind);
  const bool keep_weights = model != nullptr && model->keeps_weights;
  return std::make_unique<TimedSubstrate>(*impl_, unit, keep_weights, std::move(functional));
}

void CycleSimulation::run_pending() {
  std::vector<Operation> ops;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    ops.swap(impl_->pending);
  }
  if (ops.empty()) return;
  // A fixed order, whatever order threads recorded them in: programming first, then layer by
  // layer (block, first row).
  std::stable_sort(ops.begin(), ops.end(), [](const Operation& a, const Operation& b) {
    const auto key = [](const Operation& o) {
      return std::make_tuple(o.type == Operation::Type::Program ? 0 : 1, o.unit, o.layer, o.part, o.first_row, o.vectors);
    };
    return key(a) < key(b);
  });
  // Mark each block's last read, for units that batch reads across calls (sim/ipu_cycle.cpp).
  for (std::size_t i = ops.size(); i-- > 0;) {
    const Operation& o = ops[i];
    if (o.type != Operation::Type::Multiply) continue;
    const bool last = i + 1 == ops.size() || ops[i + 1].type != Operation::Type::Multiply || ops[i + 1].unit != o.unit ||
                      ops[i + 1].layer != o.layer || ops[i + 1].part != o.part;
    ops[i].last_of_block = last;
  }
  impl_->driver->queue = &ops;
  impl_->driver->work.notify(sc_core::SC_ZERO_TIME);
  try {
    sc_core::sc_start();  // returns when every operation is done (nothing left to simulate)
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC simulation failed: ") + e.what());
  }
  impl_->driver->queue = nullptr;
  for (const Operation& op : ops) op.owner->attribute(op.result);
}

Counters CycleSimulation::unit_totals(std::size_t unit) const { return impl_->driver->units.at(unit)->totals(); }

models::MatrixRM CycleSimulation::stored_weights(std::size_t unit, int layer, int part) const {
  models::MatrixRM out;
  if (!impl_->driver->units.at(unit)->stored_weights(layer, part, out))
    throw Error("unit " + impl_->specs.at(unit).name + " holds no weights of layer " + std::to_string(layer) + " block " + std::to_string(part) +
                " in a memory");
  return out;
}

double CycleSimulation::simulated_seconds() const { return sc_core::sc_time_stamp().to_seconds(); }


}  // namespace faultline::sim
