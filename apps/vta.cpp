// `faultline vta`: run VTA instruction streams on the functional machine, and convert them between
// insn.bin and text (models/vta_isa.h, models/vta_program.h).
#include "apps/cli.h"

#include "models/files.h"
#include "models/vta_program.h"
#include "sim/vta_rtl.h"

namespace faultline::app {
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

}  // namespace

int cmd_vta(const std::vector<std::string>& args) {
  std::string action, program, input, output, stats, level = "functional", rtl_module = "mac_array";
  std::vector<std::string> config;
  po::options_description options("vta options");
  options.add_options()
      ("help,h", "show this help")
      ("action", po::value(&action)->required(), "run (execute DIR/insn.bin on DIR/dram.bin, write DIR/dram.out.bin), asm (text to insn.bin) or disasm (insn.bin to text)")
      ("program", po::value(&program), "run: the program folder (insn.bin, dram.bin)")
      ("input", po::value(&input), "asm: the text program; disasm: the insn.bin")
      ("out", po::value(&output), "asm: the insn.bin to write; run: the counters as JSON; disasm: a text file (default: standard output)")
      ("level", po::value(&level)->default_value(level), "run: functional, or rtl (every GEMM micro-op's product on a Verilated GEMM core, --rtl)")
      ("rtl", po::value(&rtl_module)->default_value(rtl_module), "run --level rtl: the RTL module (BLOCK x BLOCK lanes, exact twin; faultline cosim --list)")
      ("config", po::value(&config), "a vta_config.json field, e.g. log_block=3 (repeatable; default: tvm-vta's default configuration)");
  po::positional_options_description positional;
  positional.add("action", 1).add("input", 1);
  po::variables_map vm;
  if (!parse("vta", "run --program DIR [--out stats.json] | asm FILE.txt --out insn.bin | disasm insn.bin [--out FILE.txt]", options, args, vm,
             positional))
    return 0;
  const models::vta::VtaConfig c = read_config(config);
  if (action == "run") {
    if (program.empty()) throw Error("vta run: --program DIR is required");
    if (!output.empty()) check_output_file(output, "--out");
    if (level != "functional" && level != "rtl") throw Error("--level: must be functional or rtl, got '" + level + "'");
    std::unique_ptr<sim::VtaRtlGemm> rtl;
    if (level == "rtl") rtl = std::make_unique<sim::VtaRtlGemm>(rtl_module, c);
    const models::vta::VtaRunResult r = models::vta::run_program_folder(program, c, [&](models::vta::VtaMachine& m) {
      if (rtl) rtl->attach(m);
    });
    const models::vta::VtaCounters& k = r.counters;
    std::printf("%llu instructions; inp_load_nbytes %llu, wgt_load_nbytes %llu, acc_load_nbytes %llu, uop_load_nbytes %llu, out_store_nbytes %llu, "
                "gemm_counter %llu, alu_counter %llu\nwrote %s\n",
                static_cast<unsigned long long>(k.instructions), static_cast<unsigned long long>(k.inp_load_nbytes),
                static_cast<unsigned long long>(k.wgt_load_nbytes), static_cast<unsigned long long>(k.acc_load_nbytes),
                static_cast<unsigned long long>(k.uop_load_nbytes), static_cast<unsigned long long>(k.out_store_nbytes),
                static_cast<unsigned long long>(k.gemm_counter), static_cast<unsigned long long>(k.alu_counter), r.dram_out.c_str());
    std::string json = models::vta::counters_json(k);
    if (rtl) {
      std::printf("rtl %s: %llu cycles, %llu GEMM products, %llu weight tiles loaded\n", rtl_module.c_str(), static_cast<unsigned long long>(rtl->cycles()),
                  static_cast<unsigned long long>(rtl->products()), static_cast<unsigned long long>(rtl->weight_loads()));
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
  throw Error("vta: unknown action '" + action + "' (run, asm, disasm)");
}

}  // namespace faultline::app
