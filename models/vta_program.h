// VTA programs on disk (`faultline vta run|asm|disasm`): insn.bin (16 bytes per instruction, the
// 128-bit instruction as two little-endian 64-bit words, low word first), dram.bin (the DRAM
// image), and the text form (models/vta_isa.h, to_text/from_text).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/vta_isa.h"

namespace faultline::models::vta {

// Throws faultline::Error naming the file (and the instruction or line) for anything malformed.
std::vector<Instruction> read_insn_bin(const std::string& path, const VtaConfig& config);
std::string insn_bin(const std::vector<Instruction>& program, const VtaConfig& config);
std::vector<Instruction> read_asm(const std::string& path);  // '#' starts a comment
std::string disassemble(const std::vector<Instruction>& program);

struct VtaRunResult {
  VtaCounters counters;
  std::string dram_out;  // the path written
};
// Runs DIR/insn.bin on DIR/dram.bin and writes DIR/dram.out.bin (the whole image after the run).
// `run` executes the program on the image (default: a functional VtaMachine; the cycle and RTL
// levels pass theirs); its errors are prefixed with DIR/insn.bin.
using ProgramRunner = std::function<VtaCounters(const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram)>;
VtaRunResult run_program_folder(const std::string& folder, const VtaConfig& config, const ProgramRunner& run = {});
// The counters as a JSON object, by tvm-vta's names.
std::string counters_json(const VtaCounters& counters);

}  // namespace faultline::models::vta
