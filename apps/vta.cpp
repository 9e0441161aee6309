// `faultline vta`: run VTA instruction streams on the functional machine, and convert them between
// insn.bin and text (models/vta_isa.h, models/vta_program.h).
#include "apps/cli.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>

#include "hwcfg/hardware_config.h"
#include "models/files.h"
#include "models/vta_substrate.h"
#include "nn/dataset.h"
#include "nn/evaluate.h"
#include "nn/json.h"
#include "nn/onnx_io.h"
#include "studies/hardware.h"
#include "models/vta_program.h"
#include "sim/vta_cycle.h"
#include "sim/vta_rtl.h"

namespace faultline::app {

const char* const vta_command_name = "vta";
const char* const vta_command_summary = "run VTA instruction streams (functional, cycle or RTL level), assemble and disassemble them";

namespace {

// --config KEY=VALUE: a field of vta_config.json.
models::vta::VtaConfig read_config(const std::vector<std::string>& assignments) {
  models::vta::VtaConfig c;
  const std::pair<const char*, int*> fields[] = {{"log_inp_width", &c.log_inp_width},       {"log_wgt_width", &c.log_wgt_width},
                                                 {"log_acc_width", &c.log_acc_width},       {"log_batch", &c.log_batch},
                                                 {"log_block", &c.log_block},               {"log_uop_buff_size", &c.log_uop_buff_size},
                                                 {"log_inp_buff_size", &c.log_inp_buff_size}, {"log_wgt_buff_size", &c.log_wgt_buff_size},
                                                 {"log_acc_buff_size", &c.log_acc_buff_size}};
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    int* target = nullptr;
    for (const auto& [name, field] : fields)
      if (eq != std::string::npos && a.compare(0, eq, name) == 0 && eq == std::string(name).size()) target = field;
    if (target == nullptr) throw Error("--config '" + a + "': expected FIELD=VALUE with a field of vta_config.json (log_batch, log_block, ...)");
    try {
      std::size_t used = 0;
      *target = std::stoi(a.substr(eq + 1), &used);
      if (used != a.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error("--config '" + a + "': the value must be an integer");
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(std::string("--config: ") + e.what());
  }
  return c;
}

// --timing KEY=VALUE: a parameter of the cycle level (sim::VtaTiming::table()).
sim::VtaTiming read_timing(const std::vector<std::string>& assignments) {
  const auto& table = sim::VtaTiming::table();
  const std::vector<models::ParamSpec> specs = table.specs();
  models::Params params = models::default_params(specs);
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const models::ParamSpec& s) { return eq != std::string::npos && a.compare(0, eq, s.name) == 0 && eq == s.name.size(); });
    if (spec == specs.end()) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.name;
      throw Error("--timing '" + a + "': expected FIELD=VALUE with a field of " + known);
    }
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(a.substr(eq + 1), &used);
      if (used != a.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error("--timing '" + a + "': the value must be a number");
    }
    const std::string problem = models::check_number(*spec, value);
    if (!problem.empty()) throw Error("--timing '" + a + "': " + spec->name + " " + problem);
    params.set_number(spec->name, value);
  }
  return table.read(params);
}

// --faults inp=1e-4,wgt=1e-5,...: bit error rates of VTA's buffers (models::vta::VtaFaults).
models::vta::VtaFaults read_faults(const std::string& list, std::uint64_t seed) {
  models::vta::VtaFaults f;
  f.seed = seed;
  std::size_t start = 0;
  while (start < list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    start = comma + 1;
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    double* rate = name == "inp" ? &f.inp : name == "wgt" ? &f.wgt : name == "acc" ? &f.acc : name == "uop" ? &f.uop : name == "dram" ? &f.dram : nullptr;
    if (eq == std::string::npos || rate == nullptr) throw Error("--faults '" + item + "': expected BUFFER=RATE with a buffer of inp, wgt, acc, uop, dram");
    try {
      std::size_t used = 0;
      *rate = std::stod(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error("--faults '" + item + "': the rate must be a number");
    }
    if (!(*rate >= 0 && *rate <= 1)) throw Error("--faults '" + item + "': the rate must be in [0, 1]");
  }
  return f;
}

// `vta compile`: the network's layers as VTA program folders. The model runs on the first images
// of the data with the hardware description's vta units (calibrated as eval calibrates them);
// each layer's first read is written as DIR/LAYER/insn.bin and dram.bin (with that read's int8
// inputs), expected.dram.out.bin (the image after the functional run), program.txt (the
// disassembly) and layer.json (shapes, quantization, where the input and output lie in DRAM).
int compile_network(const std::string& model, const std::string& hw, const std::vector<std::string>& sets, const std::string& data,
                    std::int64_t images, const std::string& out) {
  if (model.empty() || out.empty()) throw Error("vta compile: --model M and --out DIR are required");
  if (images < 1) throw Error("--images: must be at least 1, got " + std::to_string(images));
  const hwcfg::HardwareConfig config = hwcfg::load_hardware_config(hw, sets);
  for (const auto& unit : config.units)
    if (unit.kind == "vta" && models::vta::VtaUnitConfig::table().read(unit.params).faults(0).any())
      throw Error(config.source + ": unit '" + unit.name + "' has bit error rates; vta compile writes the fault-free programs (vta run --faults adds them)");
  auto graph = nn::load_onnx(model);
  const nn::Dataset test = nn::load_dataset(data, false);
  studies::calibrate(config, *graph, test, 1);
  studies::program(config, *graph, models::ProgramContext{1, 0});
  struct Layer {
    std::string folder;
    std::string json, insn, disassembly;
    std::vector<std::uint8_t> before, after;
    std::size_t instructions = 0;
  };
  std::map<std::string, Layer> layers;
  std::vector<std::string> order;
  std::mutex mutex;
  models::vta::VtaConfig machine_config;
  bool have_config = false;
  for (const auto& unit : config.units)
    if (unit.kind == "vta") {
      const models::vta::VtaConfig c = models::vta::VtaUnitConfig::table().read(unit.params).machine();
      const auto fields = [](const models::vta::VtaConfig& v) {
        return std::vector<int>{v.log_batch, v.log_block, v.log_uop_buff_size, v.log_inp_buff_size, v.log_wgt_buff_size, v.log_acc_buff_size};
      };
      if (have_config && fields(c) != fields(machine_config))
        throw Error(config.source + ": unit '" + unit.name + "' configures VTA differently from another vta unit; vta compile writes programs for one configuration");
      machine_config = c;
      have_config = true;
    }
  if (!have_config) throw Error(config.source + ": no unit of kind vta (vta compile writes the programs of layers mapped to VTA)");
  models::vta::set_read_capture([&](const models::vta::CapturedRead& r) {
    std::lock_guard<std::mutex> lock(mutex);
    if (layers.count(r.layer)) return;  // the first read of each layer
    Layer l;
    std::string folder;
    for (char ch : r.layer) folder += std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' ? ch : '_';
    l.folder = folder;
    l.insn = models::vta::insn_bin(r.lowered.program, machine_config);
    l.disassembly = models::vta::disassemble(r.lowered.program);
    l.before = r.dram_before;
    l.after = r.dram_after;
    l.instructions = r.lowered.program.size();
    const models::vta::ConvLayer& c = r.conv;
    std::ostringstream j;
    nn::JsonWriter quoted;
    quoted.value(r.layer);
    j << "{\"layer\": " << quoted.str() << ", \"images\": " << r.lowered.images << ", \"in_channels\": " << c.in_channels
      << ", \"height\": " << c.height << ", \"width\": " << c.width << ", \"out_channels\": " << c.out_channels << ", \"out_height\": " << c.out_height()
      << ", \"out_width\": " << c.out_width() << ", \"kernel\": [" << c.kernel_h << ", " << c.kernel_w << "], \"stride\": [" << c.stride_h << ", "
      << c.stride_w << "], \"pads\": [" << c.pad_top << ", " << c.pad_left << ", " << c.pad_bottom << ", " << c.pad_right << "]"
      << ", \"input_exp\": " << r.quantization.input_exp << ", \"weight_exp\": " << r.quantization.weight_exp << ", \"output_exp\": " << r.quantization.output_exp
      << ", \"shift\": " << r.quantization.shift << ", \"input_offset\": " << r.lowered.input_offset << ", \"output_offset\": " << r.lowered.output_offset
      << ", \"layout\": \"NCHWnc: entries (channel tile, row, column) of BATCH x BLOCK int8 per group of BATCH images\""
      << ", \"instructions\": " << l.instructions << ", \"log_batch\": " << machine_config.log_batch << ", \"log_block\": " << machine_config.log_block
      << "}\n";
    l.json = j.str();
    order.push_back(r.layer);
    layers.emplace(r.layer, std::move(l));
  });
  try {
    nn::EvalOptions options;
    options.limit = std::min(images, test.count);
    options.chunk = options.limit;
    options.threads = 1;
    (void)nn::evaluate(*graph, test, options);
  } catch (...) {
    models::vta::set_read_capture({});
    throw;
  }
  models::vta::set_read_capture({});
  if (layers.empty()) throw Error(config.source + ": no layer of " + model + " is mapped to a vta unit");
  std::filesystem::create_directories(out);
  for (const std::string& name : order) {
    const Layer& l = layers.at(name);
    const std::string dir = (std::filesystem::path(out) / l.folder).string();
    std::filesystem::create_directories(dir);
    write_file_atomically(dir + "/insn.bin", l.insn);
    write_file_atomically(dir + "/dram.bin", std::string(l.before.begin(), l.before.end()));
    write_file_atomically(dir + "/expected.dram.out.bin", std::string(l.after.begin(), l.after.end()));
    write_file_atomically(dir + "/program.txt", l.disassembly);
    write_file_atomically(dir + "/layer.json", l.json);
    std::printf("%-12s %8zu instructions, DRAM image %zu bytes -> %s\n", name.c_str(), l.instructions, l.before.size(), dir.c_str());
  }
  return 0;
}

}  // namespace

int cmd_vta(const std::vector<std::string>& args) {
  std::string action, program, input, output, stats, level = "functional", rtl_module = "mac_array", vcd;
  std::vector<std::string> config, timing;
  std::string faults, model, hw = "vta", data = "fashion-mnist";
  std::vector<std::string> sets;
  std::int64_t images = 1;
  std::uint64_t seed = 1;
  po::options_description options("vta options");
  options.add_options()
      ("help,h", "show this help")
      ("action", po::value(&action)->required(), "run (execute DIR/insn.bin on DIR/dram.bin, write DIR/dram.out.bin), asm (text to insn.bin), disasm (insn.bin to text) or compile (a network's layers as program folders)")
      ("program", po::value(&program), "run: the program folder (insn.bin, dram.bin)")
      ("input", po::value(&input), "asm: the text program; disasm: the insn.bin")
      ("out", po::value(&output), "asm: the insn.bin to write; run: the counters as JSON; disasm: a text file (default: standard output); compile: the folder of layer folders")
      ("level", po::value(&level)->default_value(level),
       "run: functional; cycle (SystemC fetch/load/compute/store modules, token queues, AXI DRAM: cycles and stalls); or rtl (the cycle "
       "level with every GEMM micro-op's product, and the GEMMs' cycles, from a Verilated GEMM core, --rtl)")
      ("timing", po::value(&timing), "run --level cycle|rtl: a timing parameter, e.g. dram_latency=64 (repeatable; sim/README.md lists them with sources)")
      ("faults", po::value(&faults), "run: bit error rates, e.g. wgt=1e-4,acc=1e-6 (buffers inp, wgt, acc, uop, dram; README: Unreliable VTA)")
      ("seed", po::value(&seed)->default_value(seed), "run --faults: the seed of the flipped bits")
      ("vcd", po::value(&vcd), "run --level cycle|rtl: record the modules' states, queue fill levels and token counts")
      ("rtl", po::value(&rtl_module)->default_value(rtl_module), "run --level rtl: the RTL module (BLOCK x BLOCK lanes, exact twin; faultline cosim --list)")
      ("config", po::value(&config), "a vta_config.json field, e.g. log_block=3 (repeatable; default: tvm-vta's default configuration)")
      ("model", po::value(&model), "compile: the ONNX model")
      ("hw", po::value(&hw)->default_value(hw), "compile: the hardware description whose vta units the layers are mapped to")
      ("set", po::value(&sets), "compile: override a hardware field (repeatable)")
      ("data", po::value(&data)->default_value(data), "compile: the dataset whose first images calibrate the scales and fill the programs' inputs")
      ("images", po::value(&images)->default_value(images), "compile: images per program (the first ones of --data)");
  po::positional_options_description positional;
  positional.add("action", 1).add("input", 1);
  po::variables_map vm;
  if (!parse("vta", "run --program DIR [--level functional|cycle|rtl] [--timing K=V] [--vcd FILE] [--out stats.json] | asm FILE.txt --out insn.bin | disasm insn.bin [--out FILE.txt] | compile --model M [--hw vta] --out DIR", options, args, vm,
             positional))
    return 0;
  if (action == "compile") return compile_network(model, hw, sets, data, images, output);
  const models::vta::VtaConfig c = read_config(config);
  if (action == "run") {
    if (program.empty()) throw Error("vta run: --program DIR is required");
    if (!output.empty()) check_output_file(output, "--out");
    if (level != "functional" && level != "cycle" && level != "rtl") throw Error("--level: must be functional, cycle or rtl, got '" + level + "'");
    if (level == "functional" && !timing.empty()) throw Error("--timing: only with --level cycle or rtl");
    if (level == "functional" && !vcd.empty()) throw Error("--vcd: only with --level cycle or rtl");
    const sim::VtaTiming t = read_timing(timing);
    const models::vta::VtaFaults f = read_faults(faults, seed);
    std::unique_ptr<sim::VtaRtlGemm> rtl;
    std::unique_ptr<sim::VtaCycleSimulation> cycle;
    sim::VtaCycleReport cycle_report;
    models::vta::ProgramRunner runner;
    if (level == "rtl") rtl = std::make_unique<sim::VtaRtlGemm>(rtl_module, c);
    if (level != "functional") {
      // The RTL level is the cycle level with the GEMM products, and their cycles, from the core.
      cycle = std::make_unique<sim::VtaCycleSimulation>(c, t, vcd);
      cycle->machine().set_faults(f);
      if (rtl) {
        rtl->attach(cycle->machine());
        cycle->time_gemm_by([&rtl] { return rtl->cycles(); });
      }
      runner = [&](const std::vector<models::vta::Instruction>& p, std::vector<std::uint8_t>& dram) {
        cycle_report = cycle->run(p, dram);
        return cycle_report.counters;
      };
    } else {
      runner = [&](const std::vector<models::vta::Instruction>& p, std::vector<std::uint8_t>& dram) {
        models::vta::VtaMachine machine(c);
        machine.set_faults(f);
        return machine.run(p, dram);
      };
    }
    const models::vta::VtaRunResult r = models::vta::run_program_folder(program, c, runner);
    const models::vta::VtaCounters& k = r.counters;
    std::printf("%llu instructions; inp_load_nbytes %llu, wgt_load_nbytes %llu, acc_load_nbytes %llu, uop_load_nbytes %llu, out_store_nbytes %llu, "
                "gemm_counter %llu, alu_counter %llu\nwrote %s\n",
                static_cast<unsigned long long>(k.instructions), static_cast<unsigned long long>(k.inp_load_nbytes),
                static_cast<unsigned long long>(k.wgt_load_nbytes), static_cast<unsigned long long>(k.acc_load_nbytes),
                static_cast<unsigned long long>(k.uop_load_nbytes), static_cast<unsigned long long>(k.out_store_nbytes),
                static_cast<unsigned long long>(k.gemm_counter), static_cast<unsigned long long>(k.alu_counter), r.dram_out.c_str());
    if (f.any())
      std::printf("flipped bits: inp %llu, wgt %llu, acc %llu, uop %llu, dram %llu (seed %llu)\n", static_cast<unsigned long long>(k.inp_flips),
                  static_cast<unsigned long long>(k.wgt_flips), static_cast<unsigned long long>(k.acc_flips), static_cast<unsigned long long>(k.uop_flips),
                  static_cast<unsigned long long>(k.dram_flips), static_cast<unsigned long long>(seed));
    std::string json = models::vta::counters_json(k);
    if (cycle) {
      const sim::VtaCycleReport& cr = cycle_report;
      std::printf("cycle level: %llu cycles (%.3f us at %g MHz); busy load %llu, compute %llu, store %llu; token stalls l2c %llu, c2l %llu, "
                  "c2s %llu, s2c %llu; DRAM read %llu B in %llu bursts, written %llu B in %llu bursts\n",
                  static_cast<unsigned long long>(cr.cycles), cr.time_ns / 1e3, t.clock_mhz, static_cast<unsigned long long>(cr.busy[0]),
                  static_cast<unsigned long long>(cr.busy[1]), static_cast<unsigned long long>(cr.busy[2]),
                  static_cast<unsigned long long>(cr.stall_l2c), static_cast<unsigned long long>(cr.stall_c2l),
                  static_cast<unsigned long long>(cr.stall_c2s), static_cast<unsigned long long>(cr.stall_s2c),
                  static_cast<unsigned long long>(cr.dram_read_bytes), static_cast<unsigned long long>(cr.dram_read_bursts),
                  static_cast<unsigned long long>(cr.dram_write_bytes), static_cast<unsigned long long>(cr.dram_write_bursts));
      json = sim::vta_cycle_report_json(cr);
      const std::string waveform = cycle->close_waveform();
      if (!waveform.empty()) std::printf("wrote %s\n", waveform.c_str());
    }
    if (rtl) {
      std::printf("rtl %s: %llu core cycles, %llu GEMM micro-ops, %llu weight tiles loaded\n", rtl_module.c_str(),
                  static_cast<unsigned long long>(rtl->cycles()), static_cast<unsigned long long>(rtl->products()),
                  static_cast<unsigned long long>(rtl->weight_loads()));
      json.pop_back();  // the closing brace
      json += ", \"rtl_cycles\": " + std::to_string(rtl->cycles()) + ", \"rtl_weight_loads\": " + std::to_string(rtl->weight_loads()) + "}";
    }
    if (!output.empty()) write_file_atomically(output, json + "\n");
    return 0;
  }
  if (action == "asm") {
    if (input.empty() || output.empty()) throw Error("vta asm: give the text program and --out insn.bin");
    check_output_file(output, "--out");
    const auto insns = models::vta::read_asm(input);
    std::string bytes;
    try {
      bytes = models::vta::insn_bin(insns, c);
    } catch (const Error& e) {
      throw Error(input + ": " + e.what());
    }
    write_file_atomically(output, bytes);
    std::printf("%zu instructions -> %s\n", insns.size(), output.c_str());
    return 0;
  }
  if (action == "disasm") {
    if (input.empty()) throw Error("vta disasm: give the insn.bin");
    const std::string text = models::vta::disassemble(models::vta::read_insn_bin(input, c));
    if (output.empty()) std::printf("%s", text.c_str());
    else write_file_atomically(output, text);
    return 0;
  }
  throw Error("vta: unknown action '" + action + "' (run, asm, disasm, compile)");
}

}  // namespace faultline::app
