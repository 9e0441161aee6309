// `faultline cosim`: an RTL module against its behavioural twin on random vectors.
#include "apps/cli.h"

#include "nn/npy.h"
#include "sim/cosim.h"
#include "sim/rtl_unit.h"

namespace faultline::app {
namespace {

// --stimulus FILE.npy: an integer array [vectors, inputs] (any integer or float dtype holding
// whole numbers in [-128, 127]), flattened in row order.
std::vector<std::int8_t> read_int8_vectors(const std::string& path) {
  const nn::Tensor t = nn::load_npy(path).as(nn::DType::Float32);
  if (t.rank() != 2) throw Error(path + ": expected an array [vectors, inputs], got rank " + std::to_string(t.rank()));
  std::vector<std::int8_t> out;
  out.reserve(static_cast<std::size_t>(t.numel()));
  for (std::int64_t k = 0; k < t.numel(); ++k) {
    const float v = t.f()[k];
    if (!(v >= -128 && v <= 127) || v != static_cast<float>(static_cast<int>(v)))
      throw Error(path + ": element " + std::to_string(k) + " is " + std::to_string(v) + ", not an int8 value");
    out.push_back(static_cast<std::int8_t>(v));
  }
  if (out.empty()) throw Error(path + ": no vectors");
  return out;
}

}  // namespace

int cmd_cosim(const std::vector<std::string>& args) {
  sim::CosimOptions o;
  std::vector<std::string> sets;
  bool list = false, no_reset = false;
  std::string vcd_path, fst_path, stimulus, pattern, engine;
  po::options_description options("cosim options");
  options.add_options()
      ("help,h", "show this help")
      ("rtl", po::value(&o.rtl), "RTL module to drive (see --list)")
      ("list", po::bool_switch(&list), "list the RTL modules built into this program")
      ("vectors", po::value(&o.vectors)->default_value(o.vectors), "random input vectors in total")
      ("weight-sets", po::value(&o.weight_sets)->default_value(o.weight_sets), "random weight matrices, loaded one after another")
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the stimulus")
      ("stimulus", po::value(&stimulus)->default_value("mixed"), "input vectors (and weights): uniform, sparse (--density), zeros (all-zero vectors and zero lane groups), extremes (-128/127 and other edges), mixed (each in turn, one per weight set) or FILE.npy (int8 [vectors, inputs])")
      ("density", po::value(&o.density)->default_value(o.density), "sparse stimulus: probability that a lane is nonzero")
      ("backpressure-pattern", po::value(&pattern)->default_value("mixed"), "how out_ready is held low: random (--backpressure), bursts (300-cycle stalls that fill any output FIFO), alternate (every other cycle), none, mixed (each in turn)")
      ("backpressure", po::value(&o.backpressure)->default_value(o.backpressure), "random pattern: probability that out_ready is low in a cycle")
      ("no-reset", po::bool_switch(&no_reset), "do not interrupt a weight set with a reset")
      ("set", po::value(&sets), "configuration register value, e.g. drop_bits=4 (repeatable)")
      ("engine", po::value(&engine)->default_value("direct"), "direct (the Verilated C++ model stepped per clock, fast) or systemc (the Verilated SystemC model; needed for --vcd/--fst); the same results and cycles")
      ("clock-mhz", po::value(&o.clock_mhz)->default_value(o.clock_mhz), "clock of the unit")
      ("vcd", po::value(&vcd_path), "write every signal of the RTL to this VCD file")
      ("fst", po::value(&fst_path), "write every signal of the RTL to this FST file");
  po::variables_map vm;
  if (!parse("cosim", "--rtl NAME [--vectors N] [--seed S] [options] | --list", options, args, vm)) return 0;
  if (list) {
    std::printf("%-20s %-20s %-9s %-10s %s\n", "module", "top", "shape", "twin", "description");
    for (const auto& m : sim::rtl_modules()) {
      std::string extra;
      for (const auto& r : m.registers)
        extra += " [register " + r.name + " @" + std::to_string(r.address) + ", " + std::to_string(r.width) + " bits, reset " + std::to_string(r.fallback) + "]";
      if (!m.parameters.empty()) extra += " [parameters " + m.parameters + "]";
      extra += " [at most " + std::to_string(m.max_cycles_per_vector) + " cycles per transfer, " + std::to_string(m.macs_per_cycle) + " MACs per cycle]";
      std::printf("%-20s %-20s %3dx%-5d %-10s %s%s\n", m.name.c_str(), m.top.c_str(), m.outputs, m.inputs, m.twin.c_str(), m.description.c_str(), extra.c_str());
    }
    return 0;
  }
  if (o.rtl.empty()) throw Error("--rtl: required (faultline cosim --list shows the modules)");
  o.reset_mid_stream = !no_reset;
  o.pattern = sim::parse_backpressure(pattern);
  // A waveform comes from the SystemC engine; asking for one selects it unless --engine says otherwise.
  o.engine = vm["engine"].defaulted() && (vm.count("vcd") || vm.count("fst")) ? sim::RtlEngine::SystemC : sim::parse_rtl_engine(engine, "--engine");
  if (stimulus.size() > 4 && stimulus.compare(stimulus.size() - 4, 4, ".npy") == 0) {
    o.stimulus = sim::Stimulus::File;
    o.file_vectors = read_int8_vectors(stimulus);
  } else {
    o.stimulus = sim::parse_stimulus(stimulus);
  }
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
  if (r.twin == "none")
    std::printf("rtl %s has no twin: %lld results received, not compared\n", r.rtl.c_str(), static_cast<long long>(r.vectors - r.missing));
  else
    std::printf("rtl %s against its twin (%s): %lld vectors, %lld mismatching\n", r.rtl.c_str(), r.twin.c_str(), static_cast<long long>(r.vectors),
                static_cast<long long>(r.mismatches));
  if (r.missing) std::printf("%lld vectors got no result\n", static_cast<long long>(r.missing));
  if (r.mismatches) std::printf("first mismatch: %s\n", r.first_mismatch.c_str());
  if (r.differs_from_exact)
    std::printf("the twin's results differ from the exact products in %lld of the vectors\n", static_cast<long long>(r.differs_from_exact));
  std::printf("%llu cycles (%llu streaming, %.3f vectors per streaming cycle), %.3f s, %.0f vectors/s\n",
              static_cast<unsigned long long>(r.cycles), static_cast<unsigned long long>(r.stream_cycles),
              r.stream_cycles ? static_cast<double>(r.vectors) / static_cast<double>(r.stream_cycles) : 0.0, r.seconds, r.vectors_per_second());
  if (!o.waveform.empty()) std::printf("waveform: %s\n", o.waveform.c_str());
  return r.mismatches == 0 ? 0 : 1;
}

}  // namespace faultline::app
