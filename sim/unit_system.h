// A hardware unit's SystemC system: what runs one layer operation and how long it takes.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/counter_set.h"
#include "sim/operation.h"
#include "sim/systemc.h"

namespace faultline::sim {

class UnitSystem : public sc_core::sc_module {
 public:
  UnitSystem(const sc_core::sc_module_name& name, double clock_mhz);

  // Runs `op` inside the simulation; called from the driver's thread, returns when the unit has
  // finished it (simulated time has advanced by its duration).
  virtual void execute(Operation& op) = 0;
  // Everything the unit's modules have counted so far (cycles per phase, conversions, energy_pj
  // and its parts, memory traffic, ...); the driver points it at each operation's own counters.
  CounterSet counters;
  const Counters& totals() const { return counters.totals(); }
  // MACs per cycle the unit could do at most on `op` with the resources it uses for it (for
  // utilisation = MACs / (cycles × this)).
  virtual double peak_macs_per_cycle(const Operation& op) const = 0;
  virtual void trace(sc_core::sc_trace_file* file) const;
  // The weights a weight memory holds for (layer, part), decoded; false when the unit has none.
  virtual bool stored_weights(int layer, int part, models::MatrixRM& out) { (void)layer, (void)part, (void)out; return false; }

  double clock_mhz() const { return clock_mhz_; }
  const sc_core::sc_time& period() const { return period_; }

  // Top-level signals for the waveform: what the unit is doing.
  sc_core::sc_signal<bool, sc_core::SC_MANY_WRITERS> busy;
  sc_core::sc_signal<int, sc_core::SC_MANY_WRITERS> current_layer;
  sc_core::sc_signal<double, sc_core::SC_MANY_WRITERS> energy_pj;
  sc_core::sc_signal<sc_dt::uint64, sc_core::SC_MANY_WRITERS> macs;

 protected:
  // Cycles → simulated time on this unit's clock.
  sc_core::sc_time cycles(double n) const { return period_ * n; }

 private:
  double clock_mhz_;
  sc_core::sc_time period_;
};

// A kind's cycle-level model, registered in the kind's own file under sim/
// (FAULTLINE_REGISTER_CYCLE_MODEL); the kind declares that it has one
// (models::KindCapabilities::cycle_model) and the tests check that the two agree.
struct CycleModel {
  // Builds the unit's system; `name` is a valid SystemC module name.
  std::function<std::unique_ptr<UnitSystem>(const char* name, const UnitSpec& spec)> create;
  // The unit stores the programmed weights in a simulated memory (stored_weights()), so the
  // recorded programming operation carries them.
  bool keeps_weights = false;
};
void register_cycle_model(const std::string& kind, CycleModel model);
const CycleModel* find_cycle_model(const std::string& kind);

struct CycleModelRegistrar {
  CycleModelRegistrar(const char* kind, CycleModel model) { register_cycle_model(kind, std::move(model)); }
};
#define FAULTLINE_REGISTER_CYCLE_MODEL(kind, ...) \
  static const ::faultline::sim::CycleModelRegistrar faultline_cycle_model_registrar_##kind{#kind, __VA_ARGS__};

// Builds the system of one unit through its kind's registered cycle model; throws
// faultline::Error naming the unit when the kind has none.
std::unique_ptr<UnitSystem> make_unit_system(const UnitSpec& spec);

}  // namespace faultline::sim
