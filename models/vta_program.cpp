#include "models/vta_program.h"

#include <cstring>
#include <sstream>

#include "models/error.h"
#include "models/files.h"

namespace faultline::models::vta {

std::vector<Instruction> read_insn_bin(const std::string& path, const VtaConfig& config) {
  const std::string bytes = read_input_file(path);
  if (bytes.empty()) throw Error(path + ": no instructions (empty file)");
  if (bytes.size() % 16 != 0)
    throw Error(path + ": " + std::to_string(bytes.size()) + " bytes, not a whole number of 16-byte instructions");
  std::vector<Instruction> program;
  for (std::size_t k = 0; k < bytes.size() / 16; ++k) {
    Word128 w;
    std::memcpy(w.data(), bytes.data() + 16 * k, 16);  // little-endian host (x86-64), as the format is
    program.push_back(decode(w, config));
  }
  return program;
}

std::string insn_bin(const std::vector<Instruction>& program, const VtaConfig& config) {
  std::string out(program.size() * 16, '\0');
  for (std::size_t k = 0; k < program.size(); ++k) {
    Word128 w;
    try {
      w = encode(program[k], config);
    } catch (const Error& e) {
      throw Error("instruction " + std::to_string(k) + ": " + e.what());
    }
    std::memcpy(out.data() + 16 * k, w.data(), 16);
  }
  return out;
}

std::vector<Instruction> read_asm(const std::string& path) {
  std::istringstream in(read_input_file(path));
  std::vector<Instruction> program;
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    program.push_back(from_text(line, path + ":" + std::to_string(line_number)));
  }
  if (program.empty()) throw Error(path + ": no instructions");
  return program;
}

std::string disassemble(const std::vector<Instruction>& program) {
  std::string out;
  for (std::size_t k = 0; k < program.size(); ++k) out += to_text(program[k]) + "  # " + std::to_string(k) + "\n";
  return out;
}

VtaRunResult run_program_folder(const std::string& folder, const VtaConfig& config, const ProgramRunner& run) {
  const std::vector<Instruction> program = read_insn_bin(folder + "/insn.bin", config);
  const std::string image = read_input_file(folder + "/dram.bin");
  std::vector<std::uint8_t> dram(image.begin(), image.end());
  VtaRunResult result;
  try {
    if (run) {
      result.counters = run(program, dram);
    } else {
      VtaMachine machine(config);
      result.counters = machine.run(program, dram);
    }
  } catch (const Error& e) {
    throw Error(folder + "/insn.bin: " + e.what());
  }
  result.dram_out = folder + "/dram.out.bin";
  write_file_atomically(result.dram_out, std::string_view(reinterpret_cast<const char*>(dram.data()), dram.size()));
  return result;
}

std::string counters_json(const VtaCounters& c) {
  std::ostringstream out;
  out << "{\"inp_load_nbytes\": " << c.inp_load_nbytes << ", \"wgt_load_nbytes\": " << c.wgt_load_nbytes << ", \"acc_load_nbytes\": " << c.acc_load_nbytes
      << ", \"uop_load_nbytes\": " << c.uop_load_nbytes << ", \"out_store_nbytes\": " << c.out_store_nbytes << ", \"gemm_counter\": " << c.gemm_counter
      << ", \"alu_counter\": " << c.alu_counter << ", \"instructions\": " << c.instructions << ", \"inp_flips\": " << c.inp_flips
      << ", \"wgt_flips\": " << c.wgt_flips << ", \"acc_flips\": " << c.acc_flips << ", \"uop_flips\": " << c.uop_flips << ", \"dram_flips\": " << c.dram_flips
      << "}";
  return out.str();
}

}  // namespace faultline::models::vta
