// `faultline ipu plan`: how each layer of a model is spread over the tiles of the description's
// ipu units (studies/ipu_plan.h): splits, memory, exchange, supersteps and cycles per run of
// `batch` samples, and whether the whole model fits the tiles' memory at once.
#include <cstdio>

#include "apps/cli.h"
#include "hwcfg/hardware_config.h"
#include "models/files.h"
#include "nn/onnx_io.h"
#include "studies/ipu_plan.h"

namespace faultline::app {

const char* const ipu_command_name = "ipu";
const char* const ipu_command_summary = "plan a model's layers over the tiles of an IPU description (memory per tile, exchange, cycles, whether it fits)";

int cmd_ipu(const std::vector<std::string>& args) {
  std::string action, model, hw = "ipu_gc200", out;
  std::vector<std::string> sets;
  po::options_description options("ipu options");
  options.add_options()("help,h", "show this help");
  options.add_options()
      ("action", po::value(&action)->required(), "plan: print each mapped layer's plan and the model's tile memory")
      ("model", po::value(&model)->required(), "ONNX model")
      ("hw", po::value(&hw)->default_value(hw), "hardware description with ipu units (a file or a preset: ipu_gc200, ipu_gc2, ipu_small)")
      ("set", po::value(&sets), "override a hardware field (repeatable)")
      ("out", po::value(&out), "also write the plan and the per-tile memory map as JSON (for faultline report)");
  po::positional_options_description positional;
  positional.add("action", 1);
  po::variables_map vm;
  if (!parse("ipu", "plan --model MODEL.onnx [--hw ipu_gc200] [--set PATH=VALUE ...] [--out PLAN.json]", options, args, vm, positional)) return 0;
  if (action != "plan") throw Error("ipu: unknown action '" + action + "' (plan)");
  if (!out.empty()) check_output_file(out, "--out");
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  auto graph = nn::load_onnx(model);
  const studies::IpuModelPlan plan = studies::plan_ipu_model(*graph, config);
  std::printf("%-16s %-6s %-26s %-14s %6s %10s %10s %12s %3s %10s %10s\n", "layer", "unit", "groups x rows x in -> out", "splits g/r/c/k", "tiles",
              "max KiB", "mean KiB", "exchange B", "ss", "cycles", "time us");
  for (const studies::IpuLayerPlan& l : plan.layers) {
    const models::ipu::IpuPlan& p = l.plan;
    char shape[64], split[40];
    std::snprintf(shape, sizeof shape, "%lld x %lld x %lld -> %lld", static_cast<long long>(p.groups), static_cast<long long>(p.rows),
                  static_cast<long long>(p.inputs), static_cast<long long>(p.outputs));
    std::snprintf(split, sizeof split, "%d/%d/%d/%d", p.group_splits, p.row_splits, p.column_splits, p.reduction_splits);
    const hwcfg::HardwareUnit* unit = config.unit_for(l.layer, l.op_type);
    const double clock = unit->params.number("clock_mhz");
    std::printf("%-16s %-6s %-26s %-14s %6d %10.1f %10.1f %12llu %3d %10.0f %10.3f\n", l.layer.c_str(), l.unit.c_str(), shape, split, p.tiles_used(),
                static_cast<double>(p.max_tile_bytes) / 1024, p.mean_tile_bytes / 1024, static_cast<unsigned long long>(p.exchange_bytes), p.supersteps,
                p.cycles(), p.cycles() / clock);
  }
  std::printf("(per run of `batch` samples; rows = batch x rows per sample; ss = supersteps)\n");
  for (const std::string& v : plan.verdicts) std::printf("%s\n", v.c_str());
  if (!out.empty()) {
    write_file_atomically(out, studies::ipu_plan_json(plan, model, config.name));
    std::printf("wrote %s\n", out.c_str());
  }
  return 0;
}

}  // namespace faultline::app
