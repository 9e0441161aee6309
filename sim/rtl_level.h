// The RTL level: layers whose unit names an RTL module (`impl: rtl:NAME`) run through the RTL
// binding of the unit's kind (registered in the kind's own file, e.g. sim/int8_digital_rtl.cpp):
// the binding puts the kind's products on the Verilated RTL while the rest of the kind's model
// stays behavioural. With an exact RTL the results are bit-identical to the functional level;
// with an approximate one they equal its behavioural twin.
//
// The RTL runs in-line: every multiply drives the SystemC simulation on the calling thread, so
// the graph must be evaluated on one thread (the thread that created the simulation).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/substrate.h"
#include "sim/rtl_twin.h"
#include "sim/rtl_unit.h"

namespace faultline::sim {

class RtlMatrixVectorUnit;
struct RtlModuleInfo;

// What the RTL level hands a kind's binding for one unit.
struct RtlContext {
  std::string unit_name;      // "<hwcfg name>.<unit name>", for messages
  RtlMatrixVectorUnit* unit;  // the elaborated RTL module
  double clock_mhz;
  // Runs `job` inside the SystemC simulation (on the thread that created it) and returns when
  // it is done; the job may advance simulated time (RtlMatrixVectorUnit's methods).
  std::function<void(const std::function<void()>&)> run;
  const std::vector<rtl::RegisterValue>* registers;  // the values the unit runs with
  bool check;                 // compare every tile with the module's twin (eval --level rtl --check)
};

// How a kind runs on RTL matrix-vector units (rtl/README.md). A kind registers one in its own
// file (FAULTLINE_REGISTER_RTL_BINDING) and declares models::KindCapabilities::rtl_binding.
struct RtlBinding {
  // Throws faultline::Error (without a location; the caller adds the hwcfg and unit) when the RTL
  // level cannot run the module for this unit: it has no twin (nothing says what it computes), or
  // its twin at these register values contradicts what the unit's parameters describe. Called
  // before any work.
  std::function<void(const models::Params& params, const RtlModuleInfo& module, const std::vector<rtl::RegisterValue>& registers)> check;
  // The kind's functional substrate with its products moved onto the RTL.
  std::function<std::unique_ptr<models::Substrate>(const RtlContext& context, std::unique_ptr<models::Substrate> functional)> wrap;
  // The functional level of a unit with `impl: rtl:NAME`: the kind's functional substrate with
  // its products computed as the module's twin computes them at `registers` (returned unchanged
  // when the twin computes what the parameters describe, or when there is no twin), so that the
  // functional and RTL levels agree whatever the registers do. Throws as `check` does for a
  // contradiction.
  std::function<std::unique_ptr<models::Substrate>(const models::Params& params, const RtlModuleInfo& module,
                                                   const std::vector<rtl::RegisterValue>& registers,
                                                   std::unique_ptr<models::Substrate> functional)>
      functional;
};
void register_rtl_binding(const std::string& kind, RtlBinding binding);
const RtlBinding* find_rtl_binding(const std::string& kind);
std::vector<std::string> rtl_binding_kinds();

struct RtlBindingRegistrar {
  RtlBindingRegistrar(const char* kind, RtlBinding binding) { register_rtl_binding(kind, std::move(binding)); }
};
#define FAULTLINE_REGISTER_RTL_BINDING(kind, ...) \
  static const ::faultline::sim::RtlBindingRegistrar faultline_rtl_binding_registrar_##kind{#kind, __VA_ARGS__};

struct RtlUnitSpec {
  std::string name;         // "<hwcfg name>.<unit name>"
  std::string rtl;          // registered RTL module
  double clock_mhz = 1000;  // for time_ns
  std::vector<rtl::RegisterValue> registers;  // written after reset (every declared register, rtl_register_values)
};

class RtlSimulation {
 public:
  // Elaborates one instance of each unit's RTL module (one SystemC simulation per process; a
  // second simulation of any level in the same process throws). `waveform` (optional) records
  // every RTL signal, as FST when `fst`, else VCD; with several units one file each, the unit's
  // name inserted before the extension. `check` (eval --level rtl --check) runs each module's twin
  // beside the RTL on every tile and stops at the first disagreement, naming the layer, tile and
  // vector.
  // `engine`: the SystemC engine is used whenever a waveform is asked for.
  explicit RtlSimulation(std::vector<RtlUnitSpec> units, const std::string& waveform = "", bool fst = false, bool check = false,
                         RtlEngine engine = RtlEngine::Direct);
  ~RtlSimulation();
  // Flushes every unit's waveform (after the last evaluation) and checks that each was written;
  // returns their names.
  std::vector<std::string> close_waveforms();
  RtlSimulation(const RtlSimulation&) = delete;
  RtlSimulation& operator=(const RtlSimulation&) = delete;

  // Wraps `functional` through its kind's RTL binding (throws faultline::Error when the kind has
  // none or the binding refuses it). Counters added by the bindings: cycles, time_ns, macs,
  // peak_macs (per read), and the binding's own.
  std::unique_ptr<models::Substrate> wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::sim
