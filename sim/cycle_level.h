// The cycle-approximate level: every mapped layer's programming and reads go through a SystemC
// system per hardware unit (sim/README.md), which gives them cycles, simulated time and energy.
// SystemC adds time, it never changes values: each layer's numbers come from its behavioural
// model (models/), so the cycle level is bit-identical to the functional level for a seed.
//
// How it runs: the wrapped substrates record each operation (a programming, or one multiply of
// a block of input vectors) while the graph is evaluated on any number of threads; run_pending()
// then drives the recorded operations through the one SystemC simulation of the process, in a
// fixed order (programming first, then by layer, block and first row), each on an idle system
// (the hardware runs one layer operation at a time). So cycles and energy are the same for any
// thread count, and the simulation is elaborated once and reused for every layer and image.
//
// This header does not include SystemC; the modules live in the other files of sim/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/params.h"
#include "models/substrate.h"

namespace faultline::sim {

using Counters = std::map<std::string, double>;

// One hardware unit of one hardware description, as the cycle level needs it.
struct UnitSpec {
  std::string name;            // "<hwcfg name>.<unit name>": module names and VCD scopes
  std::string kind;            // substrate kind (analog_crossbar, analog_mac, rram_memory)
  models::Params params;       // the functional model's parameters (geometry, weight bits, ...)
  models::Params timing;       // `timing:` section
  models::Params energy;       // `energy:` section
  std::map<std::string, models::Params> schedule;  // per-layer knobs by layer name (models::SubstrateKind::schedule)
  // (inputs, outputs) of every weight block mapped to this unit: sizes "one array per tile".
  std::vector<std::pair<std::int64_t, std::int64_t>> block_shapes;
};

// True for kinds with a cycle-level model (registered in sim/, see unit_system.h).
bool has_cycle_model(const std::string& kind);
// The kinds with a cycle-level model, sorted.
std::vector<std::string> cycle_model_kinds();

// SystemC elaborates once per process: every level that builds a simulation (cycle, RTL, cosim)
// claims it first; a second claim throws faultline::Error naming both.
void claim_simulation(const std::string& who);

class CycleSimulation {
 public:
  // Elaborates one system per unit. Only one CycleSimulation may exist per process (SystemC
  // allows one elaboration); a second one throws. `vcd_path` (optional) records the top-level
  // signals and counters of every unit as a VCD waveform.
  explicit CycleSimulation(std::vector<UnitSpec> units, const std::string& vcd_path = "");
  ~CycleSimulation();
  // Closes the VCD (after the last evaluation) and checks that it was written whole; returns the
  // file's name as written (SystemC appends ".vcd" when the path lacks it).
  std::vector<std::string> close_waveforms();
  CycleSimulation(const CycleSimulation&) = delete;
  CycleSimulation& operator=(const CycleSimulation&) = delete;

  std::size_t units() const;
  const UnitSpec& unit(std::size_t index) const;

  // Wraps a functional substrate of unit `unit`: values from `functional`, each programming and
  // multiply recorded for the simulation. The timing counters (cycles, time_ns, energy_pj, ...)
  // appear in add_counters() after run_pending().
  std::unique_ptr<models::Substrate> wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional);

  // Runs every recorded operation through SystemC (on the calling thread) and attributes its
  // cycles, energy and counters to the substrate that recorded it.
  void run_pending();

  // What each unit's modules accumulated over the whole run (independently of the per-layer
  // attribution, so that tests can check that the two add up).
  Counters unit_totals(std::size_t unit) const;
  // The weights (outputs × inputs) a unit's weight memory holds for a layer block, decoded from
  // the bytes it stores (debug transport, no simulated time). Throws for units without a weight
  // memory (analog arrays) or layers not programmed.
  models::MatrixRM stored_weights(std::size_t unit, int layer, int part) const;
  // Simulated time so far (the operations run back to back).
  double simulated_seconds() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::sim
