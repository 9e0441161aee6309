// The levels of detail a study runs at (DESIGN.md): the glue between the NN engine (nn/) and the
// SystemC level (sim/), which know nothing of each other.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "hwcfg/hardware_config.h"
#include "sim/cycle_level.h"
#include "sim/rtl_level.h"
#include "sim/rtl_unit.h"

namespace faultline::studies {

// Elaborates the one SystemC simulation of the process with a system for every unit of every
// config that some layer of `graph` is mapped to, and sets each config's `wrap` so that those
// layers run through it. Throws faultline::Error naming the hwcfg and unit when a mapped unit's
// kind has no cycle-level model. `vcd_path` (optional) records the waveform.
std::unique_ptr<sim::CycleSimulation> attach_cycle_level(std::vector<hwcfg::HardwareConfig>& configs, nn::Graph& graph,
                                                         const std::string& vcd_path);

// The RTL level: every unit a layer of `graph` is mapped to must name an RTL module
// (`impl: rtl:NAME`, kind int8_digital); elaborates them and sets each config's `wrap`. Throws
// faultline::Error naming the hwcfg and unit otherwise. The graph must then be evaluated on the
// calling thread.
// `check`: run each module's twin beside the RTL on every tile (sim::RtlSimulation).
std::unique_ptr<sim::RtlSimulation> attach_rtl_level(std::vector<hwcfg::HardwareConfig>& configs, nn::Graph& graph,
                                                     const std::string& waveform, bool fst = false, bool check = false,
                                                     sim::RtlEngine engine = sim::RtlEngine::Direct);

// The RTL module a unit's `impl: rtl:NAME` names (Error naming the hwcfg and unit when it is not
// built into this program) and the register values it runs with (Error for an unknown register
// or a value that does not fit its width, naming where the registers were given).
const sim::RtlModuleInfo& rtl_module_of(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit);
std::vector<rtl::RegisterValue> rtl_registers_of(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit,
                                                 const sim::RtlModuleInfo& info);
// Every `impl: rtl:` unit of `config` (mapped or not): the module is built, its registers fit, and
// its twin computes what the unit's parameters describe. For `faultline hw check`.
void check_rtl_units(const hwcfg::HardwareConfig& config);

}  // namespace faultline::studies
