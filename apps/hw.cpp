// `faultline hw`: check, show and document hardware descriptions and kinds.
#include "apps/cli.h"
#include "studies/levels.h"

#include "hwcfg/hardware_config.h"

namespace faultline::app {

int cmd_hw(const std::vector<std::string>& args) {
  std::string action, file;
  std::vector<std::string> sets;
  po::options_description options("hw options");
  options.add_options()
      ("help,h", "show this help")
      ("action", po::value(&action)->required(), "check (validate), show (print with defaults filled in) or kinds (document every substrate kind's parameters as Markdown)")
      ("file", po::value(&file), "hardware description: a YAML file or a preset name")
      ("set", po::value(&sets), "override a field, e.g. units.xbar.adc_bits=6 (repeatable)");
  po::positional_options_description positional;
  positional.add("action", 1).add("file", 1);
  po::variables_map vm;
  if (!parse("hw", "check|show FILE [--set PATH=VALUE ...] | faultline hw kinds", options, args, vm, positional)) return 0;
  if (action == "kinds") {
    std::printf("%s", hwcfg::substrate_kinds_markdown().c_str());
    return 0;
  }
  if (action != "check" && action != "show") throw Error("hw: unknown action '" + action + "' (check, show, kinds)");
  if (file.empty()) throw Error("hw " + action + ": missing FILE");
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(file, sets);
  if (action == "show") {
    std::printf("# %s\n%s", config.source.c_str(), config.to_yaml().c_str());
  } else {
    studies::check_rtl_units(config);  // impl: rtl:NAME is built, its registers fit, its twin agrees
    std::printf("%s: ok (%zu unit(s), %zu mapping rule(s), %zu noise site(s))\n", config.source.c_str(), config.units.size(),
                config.mapping.size(), config.noise_sites.size());
  }
  return 0;
}

}  // namespace faultline::app
