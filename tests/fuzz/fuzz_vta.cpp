// libFuzzer target: VTA instruction streams on the functional machine (models/vta_isa.h). The
// input's first byte gives the number of instructions k (1-64), the next 16·k bytes are the
// stream (insn.bin format), the rest is the DRAM image. faultline::Error is the answer to a bad
// program; anything else (a crash, a sanitizer report, a hang) is a bug. Programs whose loops
// would take more than 2^20 micro-op iterations are skipped: they are slow, not wrong.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "models/error.h"
#include "models/vta_isa.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace faultline::models::vta;
  if (size < 1) return 0;
  const std::size_t k = 1 + data[0] % 64;
  if (size < 1 + 16 * k) return 0;
  const VtaConfig config;
  std::vector<Instruction> program;
  std::uint64_t work = 0;
  for (std::size_t i = 0; i < k; ++i) {
    Word128 w;
    std::memcpy(w.data(), data + 1 + 16 * i, 16);
    const Instruction insn = decode(w, config);
    if (insn.opcode == static_cast<int>(Opcode::Gemm) || insn.opcode == static_cast<int>(Opcode::Alu))
      work += static_cast<std::uint64_t>(insn.iter_out) * insn.iter_in * (insn.uop_end > insn.uop_bgn ? insn.uop_end - insn.uop_bgn : 0);
    // A load or store touches at most its padded size.
    if (insn.opcode <= 1) work += (static_cast<std::uint64_t>(insn.y_size) + 30) * (insn.x_size + 30) / 16;
    // Every instruction survives encode → decode.
    if (insn.opcode <= 4 && to_text(decode(encode(insn, config), config)) != to_text(insn)) __builtin_trap();
    program.push_back(insn);
  }
  if (work > (1u << 20)) return 0;
  std::vector<std::uint8_t> dram(data + 1 + 16 * k, data + size);
  try {
    VtaMachine machine(config);
    machine.run(program, dram);
  } catch (const faultline::Error&) {
  }
  return 0;
}
