// Hardware descriptions (hwcfg/*.yaml): the units a target has and which layers run on which
// unit. Every field is documented in hwcfg/README.md. Unknown keys, wrong types and values out
// of range are errors naming the file, line, column and field.
#pragma once

#include <string>
#include <vector>

#include "nn/graph.h"

namespace faultline::nn {

struct HardwareUnit {
  std::string name;
  std::string kind;  // a registered substrate kind (models::registered_substrates())
};

struct LayerMapping {
  std::string layers = "*";  // glob over layer (node) names
  std::string op;            // "" (any), "Conv", "Gemm" or "MatMul"
  std::string unit;          // name of a unit
};

struct HardwareConfig {
  std::string source;        // file it was read from
  std::string name;
  std::string description;
  std::vector<HardwareUnit> units;
  std::vector<LayerMapping> mapping;  // first match wins; unmatched layers run ideal

  // The unit a layer runs on, or nullptr for "ideal (unmapped)".
  const HardwareUnit* unit_for(const LinearLayer& layer) const;
  // Programs every layer of `graph` with its unit's substrate.
  void program(Graph& graph, const models::ProgramContext& context) const;
};

// `spec` is a file path or the name of a shipped preset ("ideal" → hwcfg/ideal.yaml in the
// preset folder: $FAULTLINE_HWCFG_DIR, else the source tree's hwcfg/).
HardwareConfig load_hardware_config(const std::string& spec);
std::string hardware_preset_dir();
HardwareConfig parse_hardware_config(const std::string& text, const std::string& source);

}  // namespace faultline::nn
