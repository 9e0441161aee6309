// `faultline ipu plan`: how each layer of a model is spread over the tiles of the description's
// ipu units (models/ipu_substrate.h), with memory, exchange and the plan's cycles.
#include <cstdio>

#include "apps/cli.h"
#include "hwcfg/hardware_config.h"
#include "models/ipu_substrate.h"
#include "nn/onnx_io.h"

namespace faultline::app {

const char* const ipu_command_name = "ipu";
const char* const ipu_command_summary = "plan a model's layers over the tiles of an IPU description (memory per tile, exchange, cycles)";

int cmd_ipu(const std::vector<std::string>& args) {
  std::string action, model, hw = "ipu_gc200";
  std::vector<std::string> sets;
  po::options_description options("ipu options");
  options.add_options()("help,h", "show this help");
  options.add_options()
      ("action", po::value(&action)->required(), "plan: print each mapped layer's plan")
      ("model", po::value(&model)->required(), "ONNX model")
      ("hw", po::value(&hw)->default_value(hw), "hardware description with ipu units (a file or a preset: ipu_gc200, ipu_gc2, ipu_small)")
      ("set", po::value(&sets), "override a hardware field (repeatable)");
  po::positional_options_description positional;
  positional.add("action", 1);
  po::variables_map vm;
  if (!parse("ipu", "plan --model MODEL.onnx [--hw ipu_gc200] [--set PATH=VALUE ...]", options, args, vm, positional)) return 0;
  if (action != "plan") throw Error("ipu: unknown action '" + action + "' (plan)");
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  auto graph = nn::load_onnx(model);
  int planned = 0;
  std::printf("%-14s %-8s %-22s %-12s %6s %12s %12s %12s %4s %12s %10s\n", "layer", "unit", "rows x in -> out", "splits r/c/k", "tiles", "max KiB",
              "mean KiB", "exchange B", "ss", "cycles", "time us");
  for (const nn::LinearLayer* layer : graph->layers()) {
    const hwcfg::HardwareUnit* unit = config.unit_for(layer->name(), layer->op_type());
    if (!unit || unit->kind != ipu_command_name) continue;
    const models::ipu::IpuUnitConfig c = models::ipu::IpuUnitConfig::table().read(unit->params);
    for (std::size_t b = 0; b < layer->blocks().size(); ++b) {
      const models::MatrixRM& w = layer->blocks()[b].weights;
      const std::string name = layer->name() + (b ? " (group " + std::to_string(b) + ")" : "");
      models::ipu::IpuPlan p;
      try {
        p = models::ipu::plan_matmul(c.batch, w.cols(), w.rows(), c, name);
      } catch (const Error& e) {
        throw Error(config.source + ": unit '" + unit->name + "': " + e.what());
      }
      char shape[64], split[32];
      std::snprintf(shape, sizeof shape, "%lld x %lld -> %lld", static_cast<long long>(p.rows), static_cast<long long>(p.inputs), static_cast<long long>(p.outputs));
      std::snprintf(split, sizeof split, "%d/%d/%d", p.row_splits, p.column_splits, p.reduction_splits);
      std::printf("%-14s %-8s %-22s %-12s %6d %12.1f %12.1f %12llu %4d %12.0f %10.3f\n", name.c_str(), unit->name.c_str(), shape, split, p.tiles_used(),
                  static_cast<double>(p.max_tile_bytes) / 1024, p.mean_tile_bytes / 1024, static_cast<unsigned long long>(p.exchange_bytes), p.supersteps,
                  p.cycles(), p.cycles() / c.clock_mhz);
      ++planned;
    }
  }
  if (planned == 0) throw Error(config.source + ": no layer of " + model + " is mapped to a unit of kind ipu");
  std::printf("(per run of `batch` rows; compute, exchange and sync cycles from the plan, functional level)\n");
  return 0;
}

}  // namespace faultline::app
