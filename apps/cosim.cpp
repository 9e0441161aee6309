// `faultline cosim`: an RTL module against its behavioural twin on random vectors.
#include "apps/cli.h"

#include "sim/cosim.h"
#include "sim/rtl_unit.h"

namespace faultline::app {

int cmd_cosim(const std::vector<std::string>& args) {
  sim::CosimOptions o;
  std::vector<std::string> sets;
  bool list = false, no_reset = false;
  std::string vcd_path, fst_path;
  po::options_description options("cosim options");
  options.add_options()
      ("help,h", "show this help")
      ("rtl", po::value(&o.rtl), "RTL module to drive (see --list)")
      ("list", po::bool_switch(&list), "list the RTL modules built into this program")
      ("vectors", po::value(&o.vectors)->default_value(o.vectors), "random input vectors in total")
      ("weight-sets", po::value(&o.weight_sets)->default_value(o.weight_sets), "random weight matrices, loaded one after another")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the stimulus")
      ("backpressure", po::value(&o.backpressure)->default_value(o.backpressure), "probability that out_ready is low in a cycle")
      ("no-reset", po::bool_switch(&no_reset), "do not interrupt a weight set with a reset")
      ("set", po::value(&sets), "configuration register value, e.g. drop_bits=4 (repeatable)")
      ("clock-mhz", po::value(&o.clock_mhz)->default_value(o.clock_mhz), "clock of the unit")
      ("vcd", po::value(&vcd_path), "write every signal of the RTL to this VCD file")
      ("fst", po::value(&fst_path), "write every signal of the RTL to this FST file");
  po::variables_map vm;
  if (!parse("cosim", "--rtl NAME [--vectors N] [--seed S] [options] | --list", options, args, vm)) return 0;
  if (list) {
    std::printf("%-20s %-20s %-9s %-7s %s\n", "module", "top", "shape", "twin", "description");
    for (const auto& m : sim::rtl_modules()) {
      std::string regs;
      for (const auto& r : m.registers) regs += " [register " + r.name + " @" + std::to_string(r.address) + ", reset " + std::to_string(r.fallback) + "]";
      std::printf("%-20s %-20s %3dx%-5d %-7s %s%s\n", m.name.c_str(), m.top.c_str(), m.outputs, m.inputs, m.twin.c_str(), m.description.c_str(), regs.c_str());
    }
    return 0;
  }
  if (o.rtl.empty()) throw Error("--rtl: required (faultline cosim --list shows the modules)");
  o.reset_mid_stream = !no_reset;
  if (!vcd_path.empty() && !fst_path.empty()) throw Error("--fst, --vcd: choose one waveform format");
  o.waveform = fst_path.empty() ? vcd_path : fst_path;
  if ((vm.count("vcd") || vm.count("fst")) && o.waveform.empty()) throw Error(std::string(vm.count("vcd") ? "--vcd" : "--fst") + ": the file name is empty");
  // Waveforms go to regular files (Verilator does not report failed writes, so a device could not be checked).
  if (!o.waveform.empty() && std::filesystem::exists(o.waveform) && !std::filesystem::is_regular_file(o.waveform))
    throw Error(std::string(vm.count("vcd") ? "--vcd" : "--fst") + ": '" + o.waveform + "' is not a regular file");
  o.fst = !fst_path.empty();
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("--set '" + s + "': expected REGISTER=VALUE");
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1) throw std::invalid_argument("trailing");
      o.registers[s.substr(0, eq)] = v;
    } catch (const std::exception&) {
      throw Error("--set '" + s + "': the value must be an integer");
    }
  }
  const sim::CosimReport r = sim::run_cosim(o);
  std::printf("rtl %s against its %s twin: %lld vectors, %lld mismatching\n", r.rtl.c_str(), r.twin.c_str(), static_cast<long long>(r.vectors),
              static_cast<long long>(r.mismatches));
  if (r.mismatches) std::printf("first mismatch: %s\n", r.first_mismatch.c_str());
  if (r.twin == "approx")
    std::printf("the approximate products differ from the exact ones in %lld of the streamed vectors\n", static_cast<long long>(r.differs_from_exact));
  std::printf("%llu cycles (%llu streaming, %.3f vectors per streaming cycle), %.3f s, %.0f vectors/s\n",
              static_cast<unsigned long long>(r.cycles), static_cast<unsigned long long>(r.stream_cycles),
              r.stream_cycles ? static_cast<double>(r.vectors) / static_cast<double>(r.stream_cycles) : 0.0, r.seconds, r.vectors_per_second());
  if (!o.waveform.empty()) std::printf("waveform: %s\n", o.waveform.c_str());
  return r.mismatches == 0 || r.twin == "none" ? 0 : 1;
}

}  // namespace faultline::app
