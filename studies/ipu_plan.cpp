#include "studies/ipu_plan.h"

#include <algorithm>
#include <map>

#include "models/error.h"
#include "nn/json.h"

namespace faultline::studies {

int IpuUnitMemory::tiles_holding_data() const {
  int n = 0;
  for (std::size_t t = 0; t < resident.size(); ++t) n += resident[t] + transient[t] > 0 ? 1 : 0;
  return n;
}

IpuModelPlan plan_ipu_model(nn::Graph& graph, const hwcfg::HardwareConfig& config) {
  // One sample through the exact graph: each layer records its rows per sample.
  if (graph.inputs().empty()) throw Error(graph.source + ": the model has no inputs");
  std::vector<nn::Tensor> inputs;
  for (const nn::ValueInfo& in : graph.inputs()) {
    if (!in.shape_known) throw Error(graph.source + ": input '" + in.name + "' has no declared shape (the plan needs one sample's shape)");
    nn::Shape shape = in.shape;
    for (auto& d : shape)
      if (d < 0) d = 1;
    if (in.dtype != nn::DType::Float32) throw Error(graph.source + ": input '" + in.name + "' is not float32");
    inputs.emplace_back(shape);
  }
  graph.program_ideal();
  (void)graph.run(inputs);

  IpuModelPlan out;
  std::map<std::string, std::size_t> unit_index;
  for (const nn::LinearLayer* layer : graph.layers()) {
    const hwcfg::HardwareUnit* unit = config.unit_for(layer->name(), layer->op_type());
    if (!unit || unit->kind != "ipu" || layer->blocks().empty()) continue;
    const models::ipu::IpuUnitConfig c = models::ipu::IpuUnitConfig::table().read(unit->params);
    IpuLayerPlan p;
    p.layer = layer->name();
    p.op_type = layer->op_type();
    p.unit = unit->name;
    p.rows_per_sample = std::max<std::uint64_t>(1, layer->rows_per_sample());
    const models::MatrixRM& w = layer->blocks()[0].weights;
    try {
      p.plan = models::ipu::plan_matmul(static_cast<std::int64_t>(p.rows_per_sample) * c.batch, w.cols(), w.rows(), c, layer->name(),
                                        static_cast<std::int64_t>(layer->blocks().size()));
    } catch (const Error& e) {
      throw Error(config.source + ": unit '" + unit->name + "': " + e.what());
    }
    auto [it, added] = unit_index.emplace(unit->name, out.units.size());
    if (added) {
      IpuUnitMemory m;
      m.unit = unit->name;
      m.tiles = c.tiles;
      m.capacity = static_cast<std::uint64_t>(std::llround(c.tile_memory_kib * 1024));
      m.resident.assign(static_cast<std::size_t>(c.tiles), 0);
      m.transient.assign(static_cast<std::size_t>(c.tiles), 0);
      out.units.push_back(std::move(m));
    }
    IpuUnitMemory& m = out.units[it->second];
    // Where this unit's previous layer ended.
    int next = 0;
    for (auto l = out.layers.rbegin(); l != out.layers.rend(); ++l)
      if (l->unit == unit->name) {
        next = (l->first_tile + l->plan.tiles_used()) % m.tiles;
        break;
      }
    p.first_tile = next;
    const std::uint64_t overhead = static_cast<std::uint64_t>(std::llround(c.tile_overhead_kib * 1024));
    for (int t = 0; t < p.plan.tiles_used(); ++t) {
      const std::size_t tile = static_cast<std::size_t>((p.first_tile + t) % m.tiles);
      const std::uint64_t all = models::ipu::tile_bytes(p.plan, t, c);
      if (all == 0) continue;  // an empty edge slice
      const std::uint64_t weights = models::ipu::tile_weight_bytes(p.plan, t, c);
      m.resident[tile] += weights + overhead;
      m.transient[tile] = std::max(m.transient[tile], all - weights - overhead);
    }
    out.layers.push_back(std::move(p));
  }
  if (out.layers.empty()) throw Error(config.source + ": no layer of " + graph.source + " is mapped to a unit of kind ipu");
  for (IpuUnitMemory& m : out.units) {
    for (int t = 0; t < m.tiles; ++t) {
      const std::uint64_t b = m.resident[static_cast<std::size_t>(t)] + m.transient[static_cast<std::size_t>(t)];
      if (b > m.fullest_bytes) m.fullest_bytes = b, m.fullest_tile = t;
    }
    std::string holders;
    int holding = 0;
    for (const IpuLayerPlan& l : out.layers) {
      if (l.unit != m.unit) continue;
      const int offset = ((m.fullest_tile - l.first_tile) % m.tiles + m.tiles) % m.tiles;
      if (offset < l.plan.tiles_used()) {
        if (++holding <= 4) holders += (holders.empty() ? "" : ", ") + l.layer;
      }
    }
    if (holding > 4) holders += " and " + std::to_string(holding - 4) + " more layers";
    out.verdicts.push_back("unit '" + m.unit + "': the whole model " + (m.fits() ? "fits" : "does NOT fit") + ": fullest tile " +
                           std::to_string(m.fullest_tile) + " holds " + std::to_string(m.fullest_bytes) + " of " + std::to_string(m.capacity) +
                           " bytes (weights, code and vertex state of " + holders + " resident, plus the largest layer's inputs and partials); " +
                           std::to_string(m.tiles_holding_data()) + " of " + std::to_string(m.tiles) + " tiles hold data");
  }
  return out;
}

std::string ipu_plan_json(const IpuModelPlan& plan, const std::string& model, const std::string& hardware) {
  nn::JsonWriter j;
  j.begin_object().key("kind").value("ipu_plan").key("model").value(model).key("hardware").value(hardware);
  j.key("layers").begin_array();
  for (const IpuLayerPlan& l : plan.layers) {
    const models::ipu::IpuPlan& p = l.plan;
    j.begin_object().key("layer").value(l.layer).key("op").value(l.op_type).key("unit").value(l.unit);
    j.key("rows_per_sample").value(static_cast<unsigned long long>(l.rows_per_sample));
    j.key("groups").value(static_cast<long long>(p.groups)).key("rows").value(static_cast<long long>(p.rows));
    j.key("inputs").value(static_cast<long long>(p.inputs)).key("outputs").value(static_cast<long long>(p.outputs));
    j.key("splits").begin_array().value(p.group_splits).value(p.row_splits).value(p.column_splits).value(p.reduction_splits).end_array();
    j.key("tiles_used").value(p.tiles_used()).key("first_tile").value(l.first_tile);
    j.key("max_tile_bytes").value(static_cast<unsigned long long>(p.max_tile_bytes)).key("mean_tile_bytes").value(p.mean_tile_bytes);
    j.key("exchange_bytes").value(static_cast<unsigned long long>(p.exchange_bytes)).key("supersteps").value(p.supersteps);
    j.key("sync_cycles").value(p.sync_cycles).key("exchange_cycles").value(p.exchange_cycles).key("compute_cycles").value(p.compute_cycles);
    j.key("cycles").value(p.cycles());
    j.end_object();
  }
  j.end_array().key("units").begin_array();
  for (const IpuUnitMemory& m : plan.units) {
    j.begin_object().key("unit").value(m.unit).key("tiles").value(m.tiles).key("capacity").value(static_cast<unsigned long long>(m.capacity));
    j.key("fits").value(m.fits()).key("fullest_tile").value(m.fullest_tile).key("fullest_bytes").value(static_cast<unsigned long long>(m.fullest_bytes));
    j.key("resident").begin_array();
    for (auto b : m.resident) j.value(static_cast<unsigned long long>(b));
    j.end_array().key("transient").begin_array();
    for (auto b : m.transient) j.value(static_cast<unsigned long long>(b));
    j.end_array().end_object();
  }
  j.end_array().key("verdicts").begin_array();
  for (const auto& v : plan.verdicts) j.value(v);
  j.end_array().end_object();
  return j.str() + "\n";
}

}  // namespace faultline::studies
