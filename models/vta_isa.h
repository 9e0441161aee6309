// VTA (Apache TVM's Versatile Tensor Accelerator) at the instruction level: configuration,
// instruction and micro-op encoding, and a functional machine that executes an instruction stream
// on a DRAM image as tvm-vta's functional simulator does (src/sim/sim_driver.cc), with the load,
// compute and store modules and the four dependency-token queues between them.
//
// Facts from apache/tvm-vta: include/vta/hw_spec.h (the instruction and micro-op bit fields, laid
// out as C bit fields of uint64_t / uint32_t: a field that would cross a 64-bit (32-bit) word
// starts the next one), config/vta_config.json (the default configuration) and sim_driver.cc (the
// semantics); summarised in ../shared/DESIGN.md, "VTA".
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace faultline::models::vta {

// vta_config.json's fields; defaults are tvm-vta's default configuration (BATCH 1, BLOCK 16, int8
// inputs and weights, int32 accumulators, 32 KiB INP, 256 KiB WGT, 128 KiB ACC, 32 KiB UOP).
struct VtaConfig {
  int log_inp_width = 3, log_wgt_width = 3, log_acc_width = 5;
  int log_batch = 0, log_block = 4;
  int log_uop_buff_size = 15, log_inp_buff_size = 15, log_wgt_buff_size = 18, log_acc_buff_size = 17;

  // Throws faultline::Error naming the field when the configuration is not one Faultline runs
  // (int8 inputs/weights and int32 accumulators only; buffers at least one entry; micro-op
  // fields within 32 bits).
  void validate() const;
  int batch() const { return 1 << log_batch; }
  int block() const { return 1 << log_block; }  // BLOCK_IN = BLOCK_OUT
  // log2 of the buffer depths in entries (hw_spec_const.h's VTA_LOG_*_BUFF_DEPTH).
  int log_uop_depth() const { return log_uop_buff_size - 2; }  // 32-bit micro-ops
  int log_inp_depth() const { return log_inp_buff_size - (log_batch + log_block + log_inp_width - 3); }
  int log_wgt_depth() const { return log_wgt_buff_size - (2 * log_block + log_wgt_width - 3); }
  int log_acc_depth() const { return log_acc_buff_size - (log_batch + log_block + log_acc_width - 3); }
};

enum class Opcode : int { Load = 0, Store = 1, Gemm = 2, Finish = 3, Alu = 4 };
enum class MemId : int { Uop = 0, Wgt = 1, Inp = 2, Acc = 3, Out = 4 };
enum class AluOp : int { Min = 0, Max = 1, Add = 2, Shr = 3, Mul = 4 };

std::string opcode_name(int opcode);
std::string mem_name(int mem_id);
std::string alu_name(int alu_op);

// Every field of every instruction kind; the ones an opcode does not have stay 0.
struct Instruction {
  int opcode = 0;
  bool pop_prev = false, pop_next = false, push_prev = false, push_next = false;
  // LOAD / STORE
  int mem_id = 0;
  std::uint32_t sram_base = 0, dram_base = 0;
  std::uint32_t y_size = 0, x_size = 0, x_stride = 0;
  std::uint32_t y_pad0 = 0, y_pad1 = 0, x_pad0 = 0, x_pad1 = 0;
  // GEMM / ALU
  bool reset = false;
  std::uint32_t uop_bgn = 0, uop_end = 0, iter_out = 0, iter_in = 0;
  std::uint32_t dst_out = 0, dst_in = 0, src_out = 0, src_in = 0, wgt_out = 0, wgt_in = 0;  // wgt_*: GEMM only
  // ALU
  int alu_op = 0;
  bool use_imm = false;
  std::int32_t imm = 0;  // 16-bit signed
};

// A LOAD or STORE of y rows of x entries, rows x_stride entries apart in DRAM (no padding, no
// flags): how programs are usually built.
Instruction memory_transfer(Opcode op, MemId mem, std::uint32_t sram_base, std::uint32_t dram_base, std::uint32_t y_size, std::uint32_t x_size,
                            std::uint32_t x_stride);

// The micro-ops a GEMM or ALU instruction issues: iter_out × iter_in × (uop_end − uop_bgn), 0 for
// an empty or reversed range.
inline std::uint64_t micro_ops(const Instruction& insn) {
  return insn.uop_end <= insn.uop_bgn ? 0 : static_cast<std::uint64_t>(insn.iter_out) * insn.iter_in * (insn.uop_end - insn.uop_bgn);
}

using Word128 = std::array<std::uint64_t, 2>;  // low word first, as insn.bin stores it

// The 128-bit encoding (bit positions of hw_spec.h for `config`). encode throws faultline::Error
// naming the field when a value does not fit its width.
Word128 encode(const Instruction& insn, const VtaConfig& config);
Instruction decode(const Word128& bits, const VtaConfig& config);

struct Uop {
  std::uint32_t dst = 0, src = 0, wgt = 0;  // ACC index; INP (GEMM) or ACC (ALU) index; WGT index
};
std::uint32_t encode_uop(const Uop& uop, const VtaConfig& config);
Uop decode_uop(std::uint32_t bits, const VtaConfig& config);

// One GEMM micro-op's products added to ACC: acc[b·block + r] += Σ_c in[b·block + c] ·
// wgt[r·block + c] for every batch row b < batch and output r < block, int32 sums wrapping as the
// hardware's adder. gemm_block_scalar is the plain loop (the definition, any block size).
// For VTA's default 16 × 16 block the machine keeps each WGT tile widened to 16 bits and
// interleaved in pairs (widen_tile16_pairs: for input pair q and output half h, the pairs
// (w[r][2q], w[r][2q+1]) of outputs r = 8h .. 8h+7, 256 values), and gemm_block16_pairs adds the
// products from that form, with an AVX2 kernel where the CPU has it: the same values (integer
// sums are exact, so the order does not matter).
void widen_tile16_pairs(const std::int8_t* wgt, std::int16_t* pairs);
void gemm_block16_pairs(const std::int16_t* pairs, const std::int8_t* in, std::int32_t* acc, std::size_t batch);
// Its loop for CPUs without AVX2 (public so that tests check it on any machine).
void gemm_block16_pairs_portable(const std::int16_t* pairs, const std::int8_t* in, std::int32_t* acc, std::size_t batch);
void gemm_block_scalar(const std::int8_t* in, const std::int8_t* wgt, std::int32_t* acc, std::size_t batch, std::size_t block);

// The text form of `faultline vta asm/disasm`: one instruction per line, the opcode then every
// field of that kind as name=value ("LOAD mem=INP sram_base=0 dram_base=4 y_size=1 ...").
std::string to_text(const Instruction& insn);
// Parses one line; `where` ("FILE:LINE") prefixes errors. Fields left out are 0.
Instruction from_text(const std::string& line, const std::string& where);

// "instruction K (OPCODE MEM)", how errors name an instruction.
std::string instruction_label(std::size_t index, const Instruction& insn);

// tvm-vta's fsim profiler counters, by their names, and the bits flipped by faults.
struct VtaCounters {
  std::uint64_t inp_load_nbytes = 0, wgt_load_nbytes = 0, acc_load_nbytes = 0, uop_load_nbytes = 0, out_store_nbytes = 0;
  std::uint64_t gemm_counter = 0, alu_counter = 0;
  std::uint64_t instructions = 0;
  std::uint64_t inp_flips = 0, wgt_flips = 0, acc_flips = 0, uop_flips = 0, dram_flips = 0;
};

// Unreliable VTA: bit error rates of the on-chip buffers and the DRAM. A bit written into INP,
// WGT or UOP by a LOAD, or into ACC by a LOAD, GEMM or ALU (each micro-op's write-back), is stored
// flipped with the buffer's rate; each bit of the DRAM image flips with `dram` before the run
// (retention errors). Flips are drawn from keyed streams (seed, trial, buffer, instruction index),
// so they do not depend on the level or on timing. With faults on, the machine addresses the
// buffers as the hardware does -- index bits above a buffer's address width are dropped -- so a
// flipped micro-op sends its GEMM or ALU to another entry instead of stopping the run.
struct VtaFaults {
  double inp = 0, wgt = 0, acc = 0, uop = 0, dram = 0;
  std::uint64_t seed = 0, trial = 0;
  bool any() const { return inp > 0 || wgt > 0 || acc > 0 || uop > 0 || dram > 0; }
};

// The functional machine: the on-chip buffers and a DRAM image (bytes). run() executes the
// stream; the load (LOAD INP/WGT), compute (GEMM, ALU, FINISH, LOAD UOP/ACC) and store (STORE)
// modules each take their instructions in order and run whenever the tokens they pop are there,
// as the hardware's modules do. Errors (an index outside a buffer or the DRAM image, a flag the
// instruction's module cannot have, tokens that never come, no FINISH) throw faultline::Error
// naming the instruction's index in the stream.
class VtaMachine {
 public:
  explicit VtaMachine(const VtaConfig& config);
  const VtaConfig& config() const { return config_; }
  VtaCounters run(const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram);

  // The three modules' instruction queues (indices into the program), as the fetch module
  // dispatches them (sim_driver.cc): LOAD of INP/WGT to load; LOAD of UOP/ACC, GEMM, ALU and FINISH
  // to compute; STORE to store. Throws faultline::Error naming the instruction for a memory or
  // flag its module cannot have, an unknown opcode, or a program without FINISH.
  enum Module { kLoad = 0, kCompute = 1, kStore = 2 };
  struct Routing {
    std::vector<std::size_t> queue[3];
  };
  static Routing route(const std::vector<Instruction>& program);
  static const char* module_name(int module);
  // Executes one instruction on the buffers and `dram` (what run() does between its token
  // checks); the cycle level calls it when a module completes the instruction.
  void execute(const Instruction& insn, std::size_t index, std::vector<std::uint8_t>& dram, VtaCounters& counters);

  // The products of a run of GEMM micro-ops in issue order (at most kGemmChunk, all of one GEMM
  // instruction): for micro-op u, products[u·batch·block + b·block + r] = Σ_c inp[b·block + c] ·
  // wgt[r·block + c] for every batch row b and output r; the machine adds them to ACC (int32
  // sums wrap, so the order of the additions does not matter). By default computed here; the RTL
  // level streams them through a Verilated GEMM core (sim/vta_rtl.h).
  struct GemmWork {
    const std::int8_t* inp;  // batch × block
    const std::int8_t* wgt;  // block × block (a WGT entry: the same pointer is the same tile)
  };
  static constexpr std::size_t kGemmChunk = 4096;
  using GemmBatch = std::function<void(const std::vector<GemmWork>& work, std::int32_t* products)>;
  void set_gemm_batch(GemmBatch batch) { batch_ = std::move(batch); }

  // Bit errors for the runs that follow (models/vta_isa.h, VtaFaults). Throws faultline::Error
  // for a rate outside [0, 1].
  void set_faults(const VtaFaults& faults);
  // Flips the DRAM image's bits (VtaFaults::dram); returns how many. run() does it first; the cycle
  // level calls it before its run.
  std::uint64_t flip_dram(std::vector<std::uint8_t>& dram) const;

  // Entry sizes in bytes (a LOAD/STORE's dram_base and x_stride count these).
  std::size_t entry_bytes(int mem_id) const;

 private:
  void load(const Instruction& insn, std::size_t index, const std::vector<std::uint8_t>& dram, VtaCounters& counters);
  void store(const Instruction& insn, std::size_t index, std::vector<std::uint8_t>& dram, VtaCounters& counters);
  void check_uop_range(const Instruction& insn, std::size_t index) const;  // GEMM and ALU
  void gemm(const Instruction& insn, std::size_t index, VtaCounters& counters);
  void flush_gemm_batch();  // the collected micro-ops through batch_, into ACC
  void alu(const Instruction& insn, std::size_t index, VtaCounters& counters);
  std::vector<Uop> decoded_;  // gemm(): the instruction's micro-ops, decoded once
  // 16 × 16 WGT tiles widened to 16 bits and interleaved for the AVX2 kernel, made on first use
  // and invalidated by every write to the entry (loads, bit flips); empty for other block sizes.
  const std::int16_t* wgt_pairs(std::size_t entry);
  std::vector<std::int16_t> wgt_pairs_;
  std::vector<std::uint8_t> wgt_pairs_fresh_;

  VtaConfig config_;
  std::size_t uop_depth_, inp_depth_, wgt_depth_, acc_depth_;
  std::vector<std::uint32_t> uop_;
  std::vector<std::int8_t> inp_, wgt_;  // inp: depth × batch × block; wgt: depth × block(out) × block(in)
  std::vector<std::int32_t> acc_;       // depth × batch × block
  void flip_loaded(const Instruction& insn, std::size_t index, std::size_t first_entry, std::size_t entries, VtaCounters& counters);
  void flip_acc_writes(const Instruction& insn, std::size_t index, VtaCounters& counters);
  std::uint64_t wrap(std::uint64_t entry, std::size_t depth) const { return faults_.any() ? entry & (depth - 1) : entry; }

  VtaFaults faults_;
  GemmBatch batch_;
  std::vector<GemmWork> work_;
  std::vector<std::int32_t*> work_acc_;
  std::vector<std::int32_t> products_;
};

}  // namespace faultline::models::vta
