// Hardware descriptions (hwcfg/) applied to the NN engine's graphs (nn/): which substrate each
// linear layer is programmed with and where Walking Noise sites go, for one Monte Carlo trial or
// one training step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "hwcfg/hardware_config.h"
#include "nn/dataset.h"
#include "nn/graph.h"

namespace faultline::studies {

// The unit a layer runs on, or nullptr for "ideal (unmapped)".
const hwcfg::HardwareUnit* unit_for(const hwcfg::HardwareConfig& config, const nn::LinearLayer& layer);

// How a unit with `impl: rtl:NAME` computes at the functional level: the RTL module's twin at the
// unit's registers may compute something its kind's parameters cannot describe (a shift, a
// saturation), and then every level must compute that. The RTL modules are not known here (the
// studies library runs without SystemC and Verilator); studies/levels.cpp, linked into every
// program that has them, registers this at start. Without a registration such units run their
// kind's behavioural model.
using ImplFunctional = std::function<std::unique_ptr<models::Substrate>(const hwcfg::HardwareConfig& config, const hwcfg::HardwareUnit& unit,
                                                                        std::unique_ptr<models::Substrate> functional)>;
void register_rtl_impl_functional(ImplFunctional functional);

// Programs every layer of `graph` with its unit's substrate (its RTL module's functional form for
// `impl: rtl:NAME`, then passed through config.wrap when set) and attaches the description's noise sites, for one trial. Throws faultline::Error naming
// the description when a noise site matches no node of the graph.
void program(const hwcfg::HardwareConfig& config, nn::Graph& graph, const models::ProgramContext& context);

// Activation ranges for the layers whose unit's kind quantizes with static ranges
// (models::KindCapabilities::calibration_images): when some such layer has none yet, programs the
// graph exact and runs `run` (the float model on the calibration data) with range recording on;
// `images` receives how many images the kinds want. Ranges are a function of the model and the
// data only, so they are measured once per graph and kept for every trial and description.
void calibrate(const hwcfg::HardwareConfig& config, nn::Graph& graph, const std::function<void(std::int64_t images)>& run);
// The same on the first images of a labelled dataset (the first `calibration_images`, whatever
// part of it is evaluated), on `threads` threads.
void calibrate(const hwcfg::HardwareConfig& config, nn::Graph& graph, const nn::Dataset& data, int threads);

// For nn::TrainOptions::program_hardware: programs the graph as `program` does (the trainer
// passes trial = step). `config` must outlive the returned function.
std::function<void(nn::Graph&, const models::ProgramContext&)> training_hardware(const hwcfg::HardwareConfig& config);

}  // namespace faultline::studies
