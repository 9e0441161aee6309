// Hardware descriptions (hwcfg/*.yaml): the units a target has (each a substrate kind with its
// parameters), which layers run on which unit, and Walking Noise sites. Every field is
// documented in hwcfg/README.md. Unknown keys, wrong types and values out of range are errors
// naming the file, line, column and field.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/params.h"
#include "models/substrate.h"

namespace faultline::hwcfg {

struct HardwareUnit {
  std::string name;
  std::string kind;             // a registered substrate kind
  models::Params params;        // every declared parameter, defaults filled in
  models::Params timing;        // the cycle-level model's latencies (`timing:`), defaults filled in
  models::Params energy;        // the cycle-level model's energies (`energy:`), defaults filled in
  std::string impl;             // "" (the behavioural model) or "rtl:NAME": the RTL module that runs it at --level rtl
  // With impl rtl:NAME: values of the module's configuration registers (`registers: {name: value}`),
  // written after every reset; unnamed registers keep their reset values. Names and widths are
  // checked against the module when the RTL level is attached (and by `faultline hw check`), with
  // `registers_at` (FILE:LINE:COL, or "(--set)") naming where they were given.
  std::map<std::string, long long> registers;
  std::string registers_at;
  std::string impl_at;          // FILE:LINE:COL of `impl`, for messages about the module
  // Per-layer knobs of the kind (models::SubstrateKind::schedule; `schedule: {LAYER: {...}}`): the
  // layers by exact name, each with every knob (defaults filled in); `schedule_at` FILE:LINE:COL.
  std::map<std::string, models::Params> schedule;
  std::string schedule_at;
  // The parameters a substrate for `layer` is created with: `params` plus the layer's schedule
  // knobs (their defaults when the layer is not listed).
  models::Params params_for(const std::string& layer) const;
};

// Wraps the functional substrate a unit gets for one weight block; the cycle level uses it to
// put each layer's programming and reads through its SystemC system (sim/). Must return a
// substrate that computes exactly what `functional` computes.
using SubstrateWrapper =
    std::function<std::unique_ptr<models::Substrate>(const HardwareUnit& unit, std::unique_ptr<models::Substrate> functional)>;

struct LayerMapping {
  std::string layers = "*";  // glob over layer (node) names
  std::string op;            // "" (any), "Conv", "Gemm" or "MatMul"
  std::string unit;          // name of a unit
};

// Walking Noise (Borras, Klein, Fröning, arXiv 2212.10430) after every node that matches.
struct NoiseSite {
  std::string nodes = "*";  // glob over node names
  std::string op;           // "" (any) or an op type
  float sigma_add = 0, sigma_mul = 0;
};

struct HardwareConfig {
  std::string source;        // file it was read from
  std::string name;
  std::string description;
  std::vector<HardwareUnit> units;
  std::vector<LayerMapping> mapping;          // first match wins; unmatched layers run ideal
  std::vector<NoiseSite> noise_sites;         // Walking Noise after matching nodes
  SubstrateWrapper wrap;                      // unset: the functional level

  // The unit a layer (by node name and op type) runs on, or nullptr for "ideal (unmapped)".
  const HardwareUnit* unit_for(const std::string& layer_name, const std::string& op_type) const;
  // The resolved description as YAML, with every parameter (defaults filled in) and its unit.
  std::string to_yaml() const;
};

// `spec` is a file path or the name of a shipped preset ("ideal" → hwcfg/ideal.yaml in the
// preset folder: $FAULTLINE_HWCFG_DIR, else the source tree's hwcfg/). `overrides` are
// "path=value" assignments applied before validation (e.g. "units.xbar.adc_bits=6",
// "noise.0.additive=0.5").
HardwareConfig load_hardware_config(const std::string& spec, const std::vector<std::string>& overrides = {});
HardwareConfig parse_hardware_config(const std::string& text, const std::string& source,
                                     const std::vector<std::string>& overrides = {});
std::string hardware_preset_dir();
// A glob (mapping `layers:`, noise `after:`) that matches exactly `name`: fnmatch's special
// characters escaped.
std::string glob_literal(const std::string& name);
// Every registered substrate kind with its parameters (type, default, range, unit, meaning) as
// Markdown tables: the source of hwcfg/README.md's reference section.
std::string substrate_kinds_markdown();
std::vector<std::string> hardware_presets();
// Throws faultline::Error naming the file and unit when a unit of `config` is not a noise model
// that noise-aware training can carry (models::KindCapabilities::training_noise).
void require_training_noise(const HardwareConfig& config);

}  // namespace faultline::hwcfg
