// A model's layers planned over the tiles of its ipu units (issue 16): each layer's plan
// (models::ipu::plan_matmul, for the run's batch and the layer's rows per sample) and the whole
// model's tile memory as Poplar holds it: every layer's weights resident at once, the inputs and
// partials of one layer at a time, code and vertex state per layer placed on a tile. Layers are
// placed one after another around the chip (layer l starts at the tile after layer l − 1's last),
// so that small layers do not all load tile 0.
#pragma once

#include <string>
#include <vector>

#include "hwcfg/hardware_config.h"
#include "models/ipu_substrate.h"
#include "nn/graph.h"

namespace faultline::studies {

struct IpuLayerPlan {
  std::string layer, op_type, unit;
  std::uint64_t rows_per_sample = 1;
  models::ipu::IpuPlan plan;
  int first_tile = 0;  // where the layer's tiles start (they wrap around the chip)
};

struct IpuUnitMemory {
  std::string unit;
  int tiles = 0;
  std::uint64_t capacity = 0;                 // bytes per tile
  std::vector<std::uint64_t> resident;        // per tile: weights of every layer + code and vertex state
  std::vector<std::uint64_t> transient;       // per tile: the largest inputs + partials of any one layer
  int fullest_tile = 0;
  std::uint64_t fullest_bytes = 0;
  bool fits() const { return fullest_bytes <= capacity; }
  int tiles_holding_data() const;
};

struct IpuModelPlan {
  std::vector<IpuLayerPlan> layers;
  std::vector<IpuUnitMemory> units;
  // One line per unit: whether the model fits, and the fullest tile with what fills it.
  std::vector<std::string> verdicts;
};

// Plans every layer of `graph` mapped to a unit of kind ipu. Runs one sample of zeros through the
// graph (exact products) to learn each layer's rows per sample. Throws faultline::Error naming
// the description, unit and layer when a layer fits no plan, or when no layer is mapped to an ipu.
IpuModelPlan plan_ipu_model(nn::Graph& graph, const hwcfg::HardwareConfig& config);

// The plan as JSON (`faultline ipu plan --out`; `faultline report` draws its tile memory map).
std::string ipu_plan_json(const IpuModelPlan& plan, const std::string& model, const std::string& hardware);

}  // namespace faultline::studies
