#include "models/vta_isa.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <sstream>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "models/det_math.h"
#include "models/error.h"
#include "models/philox.h"

namespace faultline::models::vta {
namespace {

// hw_spec_const.h's fixed widths.
constexpr int kOpcodeBits = 3, kMemIdBits = 3, kSramAddrBits = 16, kDramAddrBits = 32, kSizeBits = 16, kStrideBits = 16,
              kPadBits = 4, kLoopIterBits = 14, kAluOpBits = 3, kImmBits = 16;

struct Field {
  const char* name;
  int width;
  std::function<std::uint64_t(const Instruction&)> get;
  std::function<void(Instruction&, std::uint64_t)> set;
};

#define FL_FIELD(fname, member, bits) \
  Field{fname, bits, [](const Instruction& i) { return static_cast<std::uint64_t>(i.member); }, \
        [](Instruction& i, std::uint64_t v) { i.member = static_cast<decltype(i.member)>(v); }}

// The fields of an instruction kind in hw_spec.h's order (VTAMemInsn, VTAGemInsn, VTAAluInsn).
std::vector<Field> fields_of(int opcode, const VtaConfig& c) {
  std::vector<Field> f = {FL_FIELD("opcode", opcode, kOpcodeBits), FL_FIELD("pop_prev", pop_prev, 1), FL_FIELD("pop_next", pop_next, 1),
                          FL_FIELD("push_prev", push_prev, 1), FL_FIELD("push_next", push_next, 1)};
  const int uop = c.log_uop_depth(), acc = c.log_acc_depth(), inp = c.log_inp_depth(), wgt = c.log_wgt_depth();
  if (opcode == static_cast<int>(Opcode::Load) || opcode == static_cast<int>(Opcode::Store)) {
    f.insert(f.end(), {FL_FIELD("mem", mem_id, kMemIdBits), FL_FIELD("sram_base", sram_base, kSramAddrBits),
                       FL_FIELD("dram_base", dram_base, kDramAddrBits), FL_FIELD("y_size", y_size, kSizeBits), FL_FIELD("x_size", x_size, kSizeBits),
                       FL_FIELD("x_stride", x_stride, kStrideBits), FL_FIELD("y_pad0", y_pad0, kPadBits), FL_FIELD("y_pad1", y_pad1, kPadBits),
                       FL_FIELD("x_pad0", x_pad0, kPadBits), FL_FIELD("x_pad1", x_pad1, kPadBits)});
  } else if (opcode == static_cast<int>(Opcode::Gemm) || opcode == static_cast<int>(Opcode::Alu)) {
    const bool gemm = opcode == static_cast<int>(Opcode::Gemm);
    f.insert(f.end(), {FL_FIELD("reset", reset, 1), FL_FIELD("uop_bgn", uop_bgn, uop), FL_FIELD("uop_end", uop_end, uop + 1),
                       FL_FIELD("iter_out", iter_out, kLoopIterBits), FL_FIELD("iter_in", iter_in, kLoopIterBits),
                       FL_FIELD("dst_out", dst_out, acc), FL_FIELD("dst_in", dst_in, acc)});
    // GEMM's source indexes INP, ALU's indexes ACC.
    f.insert(f.end(), {FL_FIELD("src_out", src_out, gemm ? inp : acc), FL_FIELD("src_in", src_in, gemm ? inp : acc)});
    if (gemm) {
      f.insert(f.end(), {FL_FIELD("wgt_out", wgt_out, wgt), FL_FIELD("wgt_in", wgt_in, wgt)});
    } else {
      f.insert(f.end(), {FL_FIELD("alu_op", alu_op, kAluOpBits), FL_FIELD("use_imm", use_imm, 1),
                         Field{"imm", kImmBits, [](const Instruction& i) { return static_cast<std::uint64_t>(static_cast<std::uint16_t>(i.imm)); },
                               [](Instruction& i, std::uint64_t v) { i.imm = static_cast<std::int16_t>(static_cast<std::uint16_t>(v)); }}});
    }
  }
  return f;
}
#undef FL_FIELD

// Bit positions as a C compiler lays out bit fields of one 64-bit type: in order, a field that
// would cross a word boundary starts the next word.
std::vector<int> positions(const std::vector<Field>& fields, int word_bits, int total_bits) {
  std::vector<int> pos;
  int at = 0;
  for (const auto& f : fields) {
    if (at % word_bits + f.width > word_bits) at = (at / word_bits + 1) * word_bits;
    pos.push_back(at);
    at += f.width;
  }
  if (at > total_bits) throw Error("VTA configuration: the instruction fields need " + std::to_string(at) + " bits, more than " + std::to_string(total_bits));
  return pos;
}

std::uint64_t mask(int width) { return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1; }

}  // namespace

void VtaConfig::validate() const {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw Error("VTA configuration: " + what);
  };
  need(log_inp_width == 3, "log_inp_width must be 3 (int8 inputs; other widths are not modelled), got " + std::to_string(log_inp_width));
  need(log_wgt_width == 3, "log_wgt_width must be 3 (int8 weights), got " + std::to_string(log_wgt_width));
  need(log_acc_width == 5, "log_acc_width must be 5 (int32 accumulators), got " + std::to_string(log_acc_width));
  need(log_batch >= 0 && log_batch <= 4, "log_batch must be in [0, 4], got " + std::to_string(log_batch));
  need(log_block >= 1 && log_block <= 6, "log_block must be in [1, 6], got " + std::to_string(log_block));
  for (const auto& [name, value] : {std::pair{"log_uop_buff_size", log_uop_buff_size}, {"log_inp_buff_size", log_inp_buff_size},
                                    {"log_wgt_buff_size", log_wgt_buff_size}, {"log_acc_buff_size", log_acc_buff_size}})
    need(value >= 2 && value <= 30, std::string(name) + " must be in [2, 30], got " + std::to_string(value));
  need(log_uop_depth() >= 1, "the UOP buffer holds fewer than 2 micro-ops");
  need(log_inp_depth() >= 0, "log_inp_buff_size is smaller than one INP entry (batch x block bytes)");
  need(log_wgt_depth() >= 0, "log_wgt_buff_size is smaller than one WGT entry (block x block bytes)");
  need(log_acc_depth() >= 0, "log_acc_buff_size is smaller than one ACC entry (batch x block x 4 bytes)");
  // hw_spec.h's 32-bit micro-op: dst and src index ACC, wgt indexes WGT.
  need(2 * log_acc_depth() + log_wgt_depth() <= 32, "the micro-op fields (2 x log ACC depth + log WGT depth) exceed 32 bits");
  for (int op : {0, 2, 4}) (void)positions(fields_of(op, *this), 64, 128);
}

std::string opcode_name(int opcode) {
  static const char* names[] = {"LOAD", "STORE", "GEMM", "FINISH", "ALU"};
  return opcode >= 0 && opcode < 5 ? names[opcode] : "opcode " + std::to_string(opcode);
}
std::string mem_name(int mem_id) {
  static const char* names[] = {"UOP", "WGT", "INP", "ACC", "OUT"};
  return mem_id >= 0 && mem_id < 5 ? names[mem_id] : std::to_string(mem_id);
}
std::string alu_name(int alu_op) {
  static const char* names[] = {"MIN", "MAX", "ADD", "SHR", "MUL"};
  return alu_op >= 0 && alu_op < 5 ? names[alu_op] : std::to_string(alu_op);
}

Word128 encode(const Instruction& insn, const VtaConfig& config) {
  const std::vector<Field> fields = fields_of(insn.opcode, config);
  const std::vector<int> pos = positions(fields, 64, 128);
  Word128 bits{0, 0};
  for (std::size_t k = 0; k < fields.size(); ++k) {
    const std::uint64_t v = fields[k].get(insn);
    if (v & ~mask(fields[k].width))
      throw Error(opcode_name(insn.opcode) + ": field " + fields[k].name + " = " + std::to_string(v) + " does not fit its " +
                  std::to_string(fields[k].width) + " bits");
    bits[static_cast<std::size_t>(pos[k] / 64)] |= v << (pos[k] % 64);
  }
  return bits;
}

Instruction decode(const Word128& bits, const VtaConfig& config) {
  Instruction insn;
  insn.opcode = static_cast<int>(bits[0] & mask(kOpcodeBits));
  const std::vector<Field> fields = fields_of(insn.opcode, config);
  const std::vector<int> pos = positions(fields, 64, 128);
  for (std::size_t k = 0; k < fields.size(); ++k)
    fields[k].set(insn, (bits[static_cast<std::size_t>(pos[k] / 64)] >> (pos[k] % 64)) & mask(fields[k].width));
  return insn;
}

std::uint32_t encode_uop(const Uop& uop, const VtaConfig& c) {
  const int a = c.log_acc_depth(), w = c.log_wgt_depth();
  if (uop.dst > mask(a) || uop.src > mask(a) || uop.wgt > mask(w))
    throw Error("micro-op {dst " + std::to_string(uop.dst) + ", src " + std::to_string(uop.src) + ", wgt " + std::to_string(uop.wgt) +
                "} does not fit its fields (" + std::to_string(a) + ", " + std::to_string(a) + ", " + std::to_string(w) + " bits)");
  return static_cast<std::uint32_t>(uop.dst | (uop.src << a) | (static_cast<std::uint64_t>(uop.wgt) << (2 * a)));
}

Uop decode_uop(std::uint32_t bits, const VtaConfig& c) {
  const int a = c.log_acc_depth(), w = c.log_wgt_depth();
  return {static_cast<std::uint32_t>(bits & mask(a)), static_cast<std::uint32_t>((bits >> a) & mask(a)),
          static_cast<std::uint32_t>((bits >> (2 * a)) & mask(w))};
}

std::string to_text(const Instruction& insn) {
  std::ostringstream out;
  out << opcode_name(insn.opcode);
  for (const auto& f : fields_of(insn.opcode, VtaConfig{})) {
    const std::string name = f.name;
    if (name == "opcode") continue;
    out << " " << name << "=";
    if (name == "mem") out << mem_name(insn.mem_id);
    else if (name == "alu_op") out << alu_name(insn.alu_op);
    else if (name == "imm") out << insn.imm;
    else out << f.get(insn);
  }
  return out.str();
}

Instruction from_text(const std::string& line, const std::string& where) {
  std::istringstream in(line);
  std::string op;
  in >> op;
  Instruction insn;
  insn.opcode = -1;
  for (int k = 0; k < 5; ++k)
    if (op == opcode_name(k)) insn.opcode = k;
  if (insn.opcode < 0) throw Error(where + ": unknown instruction '" + op + "' (LOAD, STORE, GEMM, ALU, FINISH)");
  const std::vector<Field> fields = fields_of(insn.opcode, VtaConfig{});
  std::vector<std::string> seen;
  for (std::string token; in >> token;) {
    const auto eq = token.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(where + ": expected name=value, got '" + token + "'");
    const std::string name = token.substr(0, eq), value = token.substr(eq + 1);
    const auto f = std::find_if(fields.begin(), fields.end(), [&](const Field& x) { return name == x.name && name != "opcode"; });
    if (f == fields.end()) throw Error(where + ": " + op + " has no field '" + name + "'");
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) throw Error(where + ": field '" + name + "' given twice");
    seen.push_back(name);
    if (name == "mem" || name == "alu_op") {
      int found = -1;
      for (int k = 0; k < 5; ++k)
        if (value == (name == "mem" ? mem_name(k) : alu_name(k))) found = k;
      if (found < 0)
        throw Error(where + ": " + name + " must be " + (name == "mem" ? "UOP, WGT, INP, ACC or OUT" : "MIN, MAX, ADD, SHR or MUL") + ", got '" + value + "'");
      f->set(insn, static_cast<std::uint64_t>(found));
      continue;
    }
    long long v = 0;
    try {
      std::size_t used = 0;
      v = std::stoll(value, &used, 0);
      if (used != value.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error(where + ": field '" + name + "' must be an integer, got '" + value + "'");
    }
    if (name == "imm") {
      if (v < -32768 || v > 32767) throw Error(where + ": imm must be in [-32768, 32767] (16-bit signed), got " + value);
      insn.imm = static_cast<std::int32_t>(v);
      continue;
    }
    if (v < 0 || static_cast<std::uint64_t>(v) > mask(f->width))
      throw Error(where + ": field '" + name + "' must be in [0, " + std::to_string(mask(f->width)) + "] (" + std::to_string(f->width) + " bits), got " + value);
    f->set(insn, static_cast<std::uint64_t>(v));
  }
  return insn;
}

VtaMachine::VtaMachine(const VtaConfig& config) : config_(config) {
  config_.validate();
  uop_depth_ = std::size_t{1} << config_.log_uop_depth();
  inp_depth_ = std::size_t{1} << config_.log_inp_depth();
  wgt_depth_ = std::size_t{1} << config_.log_wgt_depth();
  acc_depth_ = std::size_t{1} << config_.log_acc_depth();
  const std::size_t b = static_cast<std::size_t>(config_.batch()), n = static_cast<std::size_t>(config_.block());
  uop_.assign(uop_depth_, 0);
  inp_.assign(inp_depth_ * b * n, 0);
  wgt_.assign(wgt_depth_ * n * n, 0);
  acc_.assign(acc_depth_ * b * n, 0);
  // The widened tile cache exists only for the 16 × 16 kernel (gemm()).
  if (n == 16) {
    wgt_pairs_.assign(wgt_depth_ * n * n, 0);
    wgt_pairs_fresh_.assign(wgt_depth_, 0);
  }
}

void VtaMachine::set_faults(const VtaFaults& faults) {
  const std::pair<const char*, double> rates[] = {{"inp", faults.inp}, {"wgt", faults.wgt}, {"acc", faults.acc}, {"uop", faults.uop}, {"dram", faults.dram}};
  for (const auto& [name, rate] : rates)
    if (!(rate >= 0 && rate <= 1)) throw Error(std::string("VTA fault rate ") + name + " must be in [0, 1], got " + std::to_string(rate));
  faults_ = faults;
}

namespace {
// Calls flip(k) for each of `bits` written bits that is stored flipped, each independently with
// probability p: the gaps between flips are geometric, drawn by inversion from `rng` (element j
// for the j-th gap), so the positions are a pure function of the stream (det::log, not libm).
template <class Flip>
std::uint64_t for_each_flip(double p, const CounterRng& rng, std::uint64_t bits, Flip&& flip) {
  if (p <= 0 || bits == 0) return 0;
  std::uint64_t count = 0;
  if (p >= 1) {
    for (std::uint64_t k = 0; k < bits; ++k) flip(k);
    return bits;
  }
  const double log_q = det::log(1.0 - p);
  std::uint64_t position = 0;
  for (std::uint64_t j = 0;; ++j) {
    const double u = 1.0 - static_cast<double>(rng.uniform(j));  // in (0, 1]
    const double gap = std::floor(det::log(u) / log_q);
    if (gap >= static_cast<double>(bits - position)) break;
    position += static_cast<std::uint64_t>(gap);
    flip(position);
    ++count;
    if (++position >= bits) break;
  }
  return count;
}
// Stream ids: the buffer (MemId, DRAM = 7) and the instruction's index.
std::uint64_t fault_stream(std::uint64_t trial, int buffer, std::uint64_t index) {
  return (trial & 0xFFFFFFull) << 40 | (static_cast<std::uint64_t>(buffer) & 0xFF) << 32 | (index & 0xFFFFFFFFull);
}
}  // namespace

void VtaMachine::flip_loaded(const Instruction& insn, std::size_t index, std::size_t first_entry, std::size_t entries, VtaCounters& counters) {
  const int mem = insn.mem_id;
  const double p = mem == static_cast<int>(MemId::Inp) ? faults_.inp : mem == static_cast<int>(MemId::Wgt) ? faults_.wgt
                   : mem == static_cast<int>(MemId::Uop) ? faults_.uop : faults_.acc;
  if (p <= 0) return;
  const std::size_t entry_bits = entry_bytes(mem) * 8;
  const CounterRng rng(faults_.seed, fault_stream(faults_.trial, mem, index));
  std::uint8_t* bytes = mem == static_cast<int>(MemId::Uop)   ? reinterpret_cast<std::uint8_t*>(uop_.data())
                        : mem == static_cast<int>(MemId::Inp) ? reinterpret_cast<std::uint8_t*>(inp_.data())
                        : mem == static_cast<int>(MemId::Wgt) ? reinterpret_cast<std::uint8_t*>(wgt_.data())
                                                              : reinterpret_cast<std::uint8_t*>(acc_.data());
  // Bit k of the load's region is bit k % 8 of byte k / 8 from its first entry (little-endian
  // words: the low bits of a micro-op or accumulator come first).
  const std::uint64_t n = for_each_flip(p, rng, static_cast<std::uint64_t>(entries) * entry_bits, [&](std::uint64_t k) {
    bytes[first_entry * (entry_bits / 8) + k / 8] ^= static_cast<std::uint8_t>(1u << (k % 8));
  });
  if (mem == static_cast<int>(MemId::Wgt) && !wgt_pairs_fresh_.empty())
    std::fill(wgt_pairs_fresh_.begin() + static_cast<std::ptrdiff_t>(first_entry), wgt_pairs_fresh_.begin() + static_cast<std::ptrdiff_t>(first_entry + entries), 0);
  (mem == static_cast<int>(MemId::Inp) ? counters.inp_flips : mem == static_cast<int>(MemId::Wgt) ? counters.wgt_flips
   : mem == static_cast<int>(MemId::Uop) ? counters.uop_flips : counters.acc_flips) += n;
}

void VtaMachine::flip_acc_writes(const Instruction& insn, std::size_t index, VtaCounters& counters) {
  if (faults_.acc <= 0) return;
  // The instruction's write-backs in issue order: micro-op q (q = (o·iter_in + i)·count + k)
  // writes one ACC entry of batch × block 32-bit lanes.
  const std::uint64_t count = insn.uop_end - insn.uop_bgn, lanes = static_cast<std::uint64_t>(config_.batch() * config_.block());
  const std::uint64_t bits = micro_ops(insn) * lanes * 32;
  const CounterRng rng(faults_.seed, fault_stream(faults_.trial, static_cast<int>(MemId::Acc), index));
  counters.acc_flips += for_each_flip(faults_.acc, rng, bits, [&](std::uint64_t k) {
    const std::uint64_t q = k / (lanes * 32), bit = k % (lanes * 32);
    const std::uint64_t uop = insn.uop_bgn + q % count, step = q / count, o = step / insn.iter_in, i = step % insn.iter_in;
    const Uop u = decode_uop(uop_[uop], config_);
    const std::uint64_t d = wrap(u.dst + o * insn.dst_out + i * insn.dst_in, acc_depth_);
    auto* word = reinterpret_cast<std::uint32_t*>(acc_.data() + d * lanes + bit / 32);
    *word ^= 1u << (bit % 32);
  });
}

std::uint64_t VtaMachine::flip_dram(std::vector<std::uint8_t>& dram) const {
  const CounterRng rng(faults_.seed, fault_stream(faults_.trial, 7, 0));
  return for_each_flip(faults_.dram, rng, static_cast<std::uint64_t>(dram.size()) * 8,
                       [&](std::uint64_t k) { dram[k / 8] ^= static_cast<std::uint8_t>(1u << (k % 8)); });
}

std::size_t VtaMachine::entry_bytes(int mem_id) const {
  const std::size_t b = static_cast<std::size_t>(config_.batch()), n = static_cast<std::size_t>(config_.block());
  switch (static_cast<MemId>(mem_id)) {
    case MemId::Uop: return 4;
    case MemId::Wgt: return n * n;
    case MemId::Inp: return b * n;
    case MemId::Acc: return b * n * 4;
    case MemId::Out: return b * n;
  }
  return 0;
}

namespace {
std::string at(std::size_t index, const Instruction& insn) { return instruction_label(index, insn); }
}  // namespace

Instruction memory_transfer(Opcode op, MemId mem, std::uint32_t sram_base, std::uint32_t dram_base, std::uint32_t y_size, std::uint32_t x_size,
                            std::uint32_t x_stride) {
  Instruction i;
  i.opcode = static_cast<int>(op);
  i.mem_id = static_cast<int>(mem);
  i.sram_base = sram_base;
  i.dram_base = dram_base;
  i.y_size = y_size;
  i.x_size = x_size;
  i.x_stride = x_stride;
  return i;
}

std::string instruction_label(std::size_t index, const Instruction& insn) {
  return "instruction " + std::to_string(index) + " (" + opcode_name(insn.opcode) +
         (insn.opcode <= 1 ? " " + mem_name(insn.mem_id) : std::string()) + ")";
}

const char* VtaMachine::module_name(int m) { return m == kLoad ? "load" : m == kCompute ? "compute" : "store"; }

VtaMachine::Routing VtaMachine::route(const std::vector<Instruction>& program) {
  Routing routing;
  std::vector<std::size_t>* queue = routing.queue;
  bool finish = false;
  for (std::size_t k = 0; k < program.size(); ++k) {
    const Instruction& insn = program[k];
    int module = kCompute;
    switch (insn.opcode) {
      case static_cast<int>(Opcode::Load):
        if (insn.mem_id == static_cast<int>(MemId::Inp) || insn.mem_id == static_cast<int>(MemId::Wgt)) module = kLoad;
        else if (insn.mem_id != static_cast<int>(MemId::Uop) && insn.mem_id != static_cast<int>(MemId::Acc))
          throw Error(at(k, insn) + ": LOAD into memory " + mem_name(insn.mem_id) + " (LOAD takes UOP, WGT, INP or ACC)");
        break;
      case static_cast<int>(Opcode::Store):
        if (insn.mem_id != static_cast<int>(MemId::Out)) throw Error(at(k, insn) + ": STORE from memory " + mem_name(insn.mem_id) + " (STORE takes OUT)");
        module = kStore;
        break;
      case static_cast<int>(Opcode::Gemm):
      case static_cast<int>(Opcode::Alu):
        break;
      case static_cast<int>(Opcode::Finish):
        finish = true;
        break;
      default:
        throw Error(at(k, insn) + ": unknown opcode " + std::to_string(insn.opcode));
    }
    // The load module has no previous module and the store module no next one.
    if (module == kLoad && (insn.pop_prev || insn.push_prev))
      throw Error(at(k, insn) + ": the load module has no previous module (pop_prev/push_prev must be 0)");
    if (module == kStore && (insn.pop_next || insn.push_next))
      throw Error(at(k, insn) + ": the store module has no next module (pop_next/push_next must be 0)");
    queue[module].push_back(k);
  }
  if (!finish) throw Error("the program has no FINISH instruction");

  return routing;
}

VtaCounters VtaMachine::run(const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram) {
  const Routing routing = route(program);
  const std::vector<std::size_t>* queue = routing.queue;
  VtaCounters counters;
  counters.dram_flips = flip_dram(dram);

  // Token queues: load→compute, compute→load, compute→store, store→compute.
  std::uint64_t l2c = 0, c2l = 0, c2s = 0, s2c = 0;
  std::size_t next[3] = {0, 0, 0};
  bool finished = false;
  for (;;) {
    bool progress = false;
    for (int m = 0; m < 3; ++m) {
      while (next[m] < queue[m].size()) {
        const std::size_t k = queue[m][next[m]];
        const Instruction& insn = program[k];
        std::uint64_t* pop_prev = m == kCompute ? &l2c : m == kStore ? &c2s : nullptr;
        std::uint64_t* pop_next = m == kLoad ? &c2l : m == kCompute ? &s2c : nullptr;
        if ((insn.pop_prev && *pop_prev == 0) || (insn.pop_next && *pop_next == 0)) break;
        if (m == kCompute && finished) throw Error(at(k, insn) + ": a compute instruction after FINISH");
        if (insn.pop_prev) --*pop_prev;
        if (insn.pop_next) --*pop_next;
        execute(insn, k, dram, counters);
        if (insn.opcode == static_cast<int>(Opcode::Finish)) finished = true;
        if (insn.push_prev) ++*(m == kCompute ? &c2l : &s2c);
        if (insn.push_next) ++*(m == kLoad ? &l2c : &c2s);
        ++next[m];
        progress = true;
      }
    }
    if (next[0] == queue[0].size() && next[1] == queue[1].size() && next[2] == queue[2].size()) break;
    if (!progress) {
      // Deadlock: every unfinished module waits for a token that no instruction can still push.
      std::string waiting;
      for (int m = 0; m < 3; ++m) {
        if (next[m] == queue[m].size()) continue;
        const std::size_t k = queue[m][next[m]];
        const Instruction& insn = program[k];
        const bool prev = insn.pop_prev && (m == kCompute ? l2c : c2s) == 0;
        const char* from = m == kLoad ? "compute" : m == kCompute ? (prev ? "load" : "store") : "compute";
        waiting += std::string(waiting.empty() ? "" : "; ") + module_name(m) + " waits at " + at(k, insn) + " for a token from " + from;
      }
      throw Error("deadlock: " + waiting + " (no instruction left can push it)");
    }
  }
  counters.instructions = program.size();
  return counters;
}

void VtaMachine::execute(const Instruction& insn, std::size_t index, std::vector<std::uint8_t>& dram, VtaCounters& counters) {
  switch (static_cast<Opcode>(insn.opcode)) {
    case Opcode::Load: load(insn, index, dram, counters); break;
    case Opcode::Store: store(insn, index, dram, counters); break;
    case Opcode::Gemm: gemm(insn, index, counters); break;
    case Opcode::Alu: alu(insn, index, counters); break;
    case Opcode::Finish: break;
  }
}

void VtaMachine::load(const Instruction& insn, std::size_t index, const std::vector<std::uint8_t>& dram, VtaCounters& counters) {
  if (insn.x_size == 0) return;  // a dependency-only LOAD (sim_driver.cc)
  const std::size_t eb = entry_bytes(insn.mem_id);
  const std::size_t depth = insn.mem_id == static_cast<int>(MemId::Uop)   ? uop_depth_
                            : insn.mem_id == static_cast<int>(MemId::Wgt) ? wgt_depth_
                            : insn.mem_id == static_cast<int>(MemId::Inp) ? inp_depth_
                                                                          : acc_depth_;
  const std::size_t row = insn.x_pad0 + insn.x_size + insn.x_pad1, rows = insn.y_pad0 + insn.y_size + insn.y_pad1;
  if (insn.sram_base + row * rows > depth)
    throw Error(at(index, insn) + ": writes entries " + std::to_string(insn.sram_base) + ".." + std::to_string(insn.sram_base + row * rows - 1) +
                " of the " + mem_name(insn.mem_id) + " buffer, which has " + std::to_string(depth));
  const auto put = [&](std::size_t entry, const std::uint8_t* src) {  // src null: zero padding
    switch (static_cast<MemId>(insn.mem_id)) {
      case MemId::Uop: {
        std::uint32_t v = 0;
        if (src) std::memcpy(&v, src, 4);  // little-endian, as the host writes it
        uop_[entry] = v;
        break;
      }
      case MemId::Wgt:
      case MemId::Inp: {
        std::int8_t* dst = (insn.mem_id == static_cast<int>(MemId::Wgt) ? wgt_.data() : inp_.data()) + entry * eb;
        if (insn.mem_id == static_cast<int>(MemId::Wgt) && !wgt_pairs_fresh_.empty()) wgt_pairs_fresh_[entry] = 0;
        if (src) std::memcpy(dst, src, eb);
        else std::memset(dst, 0, eb);
        break;
      }
      default: {
        std::int32_t* dst = acc_.data() + entry * (eb / 4);
        if (src) std::memcpy(dst, src, eb);
        else std::memset(dst, 0, eb);
        break;
      }
    }
  };
  std::size_t entry = insn.sram_base;
  for (std::size_t y = 0; y < insn.y_pad0 * row; ++y) put(entry++, nullptr);
  for (std::size_t y = 0; y < insn.y_size; ++y) {
    for (std::size_t x = 0; x < insn.x_pad0; ++x) put(entry++, nullptr);
    const std::uint64_t first = static_cast<std::uint64_t>(insn.dram_base) + y * insn.x_stride;
    if ((first + insn.x_size) * eb > dram.size())
      throw Error(at(index, insn) + ": reads DRAM bytes " + std::to_string(first * eb) + ".." + std::to_string((first + insn.x_size) * eb - 1) +
                  " of a " + std::to_string(dram.size()) + "-byte image (row " + std::to_string(y) + ")");
    for (std::size_t x = 0; x < insn.x_size; ++x) put(entry++, dram.data() + (first + x) * eb);
    for (std::size_t x = 0; x < insn.x_pad1; ++x) put(entry++, nullptr);
  }
  for (std::size_t y = 0; y < insn.y_pad1 * row; ++y) put(entry++, nullptr);
  flip_loaded(insn, index, insn.sram_base, row * rows, counters);
  const std::uint64_t bytes = static_cast<std::uint64_t>(insn.y_size) * insn.x_size * eb;  // padding is not counted
  switch (static_cast<MemId>(insn.mem_id)) {
    case MemId::Uop: counters.uop_load_nbytes += bytes; break;
    case MemId::Wgt: counters.wgt_load_nbytes += bytes; break;
    case MemId::Inp: counters.inp_load_nbytes += bytes; break;
    default: counters.acc_load_nbytes += bytes; break;
  }
}

void VtaMachine::store(const Instruction& insn, std::size_t index, std::vector<std::uint8_t>& dram, VtaCounters& counters) {
  if (insn.y_pad0 || insn.y_pad1 || insn.x_pad0 || insn.x_pad1)
    throw Error(at(index, insn) + ": padding fields must be 0 on STORE (the store module does not pad)");
  if (insn.x_size == 0) return;
  const std::size_t lanes = static_cast<std::size_t>(config_.batch() * config_.block());
  if (insn.sram_base + static_cast<std::size_t>(insn.y_size) * insn.x_size > acc_depth_)
    throw Error(at(index, insn) + ": reads entries " + std::to_string(insn.sram_base) + ".." +
                std::to_string(insn.sram_base + static_cast<std::size_t>(insn.y_size) * insn.x_size - 1) + " of the OUT buffer, which has " +
                std::to_string(acc_depth_));
  for (std::size_t y = 0; y < insn.y_size; ++y) {
    const std::uint64_t first = static_cast<std::uint64_t>(insn.dram_base) + y * insn.x_stride;
    if ((first + insn.x_size) * lanes > dram.size())
      throw Error(at(index, insn) + ": writes DRAM bytes " + std::to_string(first * lanes) + ".." + std::to_string((first + insn.x_size) * lanes - 1) +
                  " of a " + std::to_string(dram.size()) + "-byte image (row " + std::to_string(y) + ")");
    for (std::size_t x = 0; x < insn.x_size; ++x) {
      // OUT holds the low 8 bits of each ACC lane, two's complement (sim_driver.cc).
      const std::int32_t* src = acc_.data() + (insn.sram_base + y * insn.x_size + x) * lanes;
      std::uint8_t* dst = dram.data() + (first + x) * lanes;
      for (std::size_t l = 0; l < lanes; ++l) dst[l] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(src[l]) & 0xFFu);
    }
  }
  counters.out_store_nbytes += static_cast<std::uint64_t>(insn.y_size) * insn.x_size * lanes;
}

void VtaMachine::check_uop_range(const Instruction& insn, std::size_t index) const {
  if (insn.uop_bgn > insn.uop_end || insn.uop_end > uop_depth_)
    throw Error(at(index, insn) + ": micro-ops " + std::to_string(insn.uop_bgn) + ".." + std::to_string(insn.uop_end) + " outside the UOP buffer's " +
                std::to_string(uop_depth_));
}

void VtaMachine::flush_gemm_batch() {
  if (work_.empty()) return;
  const std::size_t lanes = static_cast<std::size_t>(config_.batch() * config_.block());
  products_.resize(work_.size() * lanes);
  batch_(work_, products_.data());
  for (std::size_t u = 0; u < work_.size(); ++u) {
    std::int32_t* acc = work_acc_[u];
    const std::int32_t* p = products_.data() + u * lanes;
    for (std::size_t l = 0; l < lanes; ++l) acc[l] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[l]) + static_cast<std::uint32_t>(p[l]));
  }
  work_.clear();
  work_acc_.clear();
}

namespace {

#if defined(__x86_64__)
// The 16 × 16 block (VTA's default BLOCK_IN = BLOCK_OUT = 16, Moreau et al., "A Hardware-Software
// Blueprint for Flexible Deep Learning Specialization", IEEE Micro 2019) from the widened pairs.
// Each input pair is broadcast and multiplied-and-added into eight outputs at once: no widening
// of the weights per micro-op and no horizontal adds. Integer sums: the same values.
__attribute__((target("avx2"))) void block16_pairs_avx2(const std::int16_t* pairs, const std::int8_t* in, std::int32_t* acc, std::size_t batch) {
  for (std::size_t bb = 0; bb < batch; ++bb) {
    std::int32_t x_pairs[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x_pairs), _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * bb))));
    __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
    for (int q = 0; q < 8; ++q) {
      const __m256i x = _mm256_set1_epi32(x_pairs[q]);
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs + (2 * q) * 16))));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs + (2 * q + 1) * 16))));
    }
    __m256i* out = reinterpret_cast<__m256i*>(acc + 16 * bb);
    _mm256_storeu_si256(out, _mm256_add_epi32(_mm256_loadu_si256(out), lo));  // wraps as the hardware's adder
    _mm256_storeu_si256(out + 1, _mm256_add_epi32(_mm256_loadu_si256(out + 1), hi));
  }
}

const bool cpu_has_avx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

void widen_tile16_pairs(const std::int8_t* w, std::int16_t* pairs) {
  for (int q = 0; q < 8; ++q)
    for (int r = 0; r < 16; ++r) {
      std::int16_t* dst = pairs + (2 * q + r / 8) * 16 + 2 * (r % 8);
      dst[0] = w[r * 16 + 2 * q];
      dst[1] = w[r * 16 + 2 * q + 1];
    }
}

void gemm_block16_pairs(const std::int16_t* pairs, const std::int8_t* in, std::int32_t* acc, std::size_t batch) {
#if defined(__x86_64__)
  if (cpu_has_avx2) return block16_pairs_avx2(pairs, in, acc, batch);
#endif
  gemm_block16_pairs_portable(pairs, in, acc, batch);
}

void gemm_block16_pairs_portable(const std::int16_t* pairs, const std::int8_t* in, std::int32_t* acc, std::size_t batch) {
  for (std::size_t bb = 0; bb < batch; ++bb)
    for (int r = 0; r < 16; ++r) {
      const std::int16_t* w = pairs + (r / 8) * 16 + 2 * (r % 8);  // pair 0 of output r; pair q is 32 values on
      std::int32_t sum = 0;
      for (int q = 0; q < 8; ++q) sum += std::int32_t{in[16 * bb + 2 * q]} * w[32 * q] + std::int32_t{in[16 * bb + 2 * q + 1]} * w[32 * q + 1];
      acc[16 * bb + r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[16 * bb + r]) + static_cast<std::uint32_t>(sum));  // wraps
    }
}

void gemm_block_scalar(const std::int8_t* in, const std::int8_t* wt, std::int32_t* acc, std::size_t batch, std::size_t block) {
  const std::size_t n = block;
  for (std::size_t bb = 0; bb < batch; ++bb) {
    // 16-bit operands, so that the compiler's vectorizer can use multiply-add of 16-bit pairs
    // into 32 bits (SSE2 pmaddwd); the sums are exact (|sum| ≤ 64 · 2^14).
    std::int16_t x16[64], w16[64];
    for (std::size_t c = 0; c < n; ++c) x16[c] = in[bb * n + c];
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t c = 0; c < n; ++c) w16[c] = wt[r * n + c];
      std::int32_t sum = 0;
      for (std::size_t c = 0; c < n; ++c) sum += static_cast<std::int32_t>(x16[c]) * static_cast<std::int32_t>(w16[c]);
      // int32 accumulation wraps as the hardware's adder does.
      acc[bb * n + r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[bb * n + r]) + static_cast<std::uint32_t>(sum));
    }
  }
}

const std::int16_t* VtaMachine::wgt_pairs(std::size_t entry) {
  constexpr std::size_t kTile = 16 * 16;
  std::int16_t* tile = wgt_pairs_.data() + entry * kTile;
  if (!wgt_pairs_fresh_[entry]) {
    widen_tile16_pairs(wgt_.data() + entry * kTile, tile);  // 16 outputs × 16 inputs
    wgt_pairs_fresh_[entry] = 1;
  }
  return tile;
}

void VtaMachine::gemm(const Instruction& insn, std::size_t index, VtaCounters& counters) {
  work_.clear();
  work_acc_.clear();
  check_uop_range(insn, index);
  const std::size_t b = static_cast<std::size_t>(config_.batch()), n = static_cast<std::size_t>(config_.block());
  // The micro-ops decoded once for all iterations.
  decoded_.clear();
  for (std::uint32_t k = insn.uop_bgn; k < insn.uop_end; ++k) decoded_.push_back(decode_uop(uop_[k], config_));
  for (std::uint32_t o = 0; o < insn.iter_out; ++o)
    for (std::uint32_t i = 0; i < insn.iter_in; ++i)
      for (std::uint32_t k = insn.uop_bgn; k < insn.uop_end; ++k) {
        const Uop& u = decoded_[k - insn.uop_bgn];
        const std::uint64_t a = wrap(u.dst + static_cast<std::uint64_t>(o) * insn.dst_out + static_cast<std::uint64_t>(i) * insn.dst_in, acc_depth_);
        const std::uint64_t x = wrap(u.src + static_cast<std::uint64_t>(o) * insn.src_out + static_cast<std::uint64_t>(i) * insn.src_in, inp_depth_);
        const std::uint64_t w = wrap(u.wgt + static_cast<std::uint64_t>(o) * insn.wgt_out + static_cast<std::uint64_t>(i) * insn.wgt_in, wgt_depth_);
        if (a >= acc_depth_ || (!insn.reset && (x >= inp_depth_ || w >= wgt_depth_)))
          throw Error(at(index, insn) + ": micro-op " + std::to_string(k) + " at iteration (" + std::to_string(o) + ", " + std::to_string(i) +
                      ") indexes ACC " + std::to_string(a) + "/" + std::to_string(acc_depth_) + ", INP " + std::to_string(x) + "/" +
                      std::to_string(inp_depth_) + ", WGT " + std::to_string(w) + "/" + std::to_string(wgt_depth_));
        std::int32_t* acc = acc_.data() + a * b * n;
        if (insn.reset) {
          std::fill(acc, acc + b * n, 0);
          continue;
        }
        const std::int8_t* in = inp_.data() + x * b * n;
        const std::int8_t* wt = wgt_.data() + w * n * n;
        if (batch_) {
          work_.push_back({in, wt});
          work_acc_.push_back(acc);
          if (work_.size() == kGemmChunk) flush_gemm_batch();
          continue;
        }
        if (n == 16)
          gemm_block16_pairs(wgt_pairs(w), in, acc, b);
        else
          gemm_block_scalar(in, wt, acc, b, n);
      }
  flush_gemm_batch();
  flip_acc_writes(insn, index, counters);
  if (!insn.reset) counters.gemm_counter += micro_ops(insn);
}

void VtaMachine::alu(const Instruction& insn, std::size_t index, VtaCounters& counters) {
  check_uop_range(insn, index);
  if (insn.alu_op > static_cast<int>(AluOp::Mul)) throw Error(at(index, insn) + ": unknown ALU operation " + std::to_string(insn.alu_op));
  const std::size_t lanes = static_cast<std::size_t>(config_.batch() * config_.block());
  for (std::uint32_t o = 0; o < insn.iter_out; ++o)
    for (std::uint32_t i = 0; i < insn.iter_in; ++i)
      for (std::uint32_t k = insn.uop_bgn; k < insn.uop_end; ++k) {
        const Uop u = decode_uop(uop_[k], config_);
        const std::uint64_t d = wrap(u.dst + static_cast<std::uint64_t>(o) * insn.dst_out + static_cast<std::uint64_t>(i) * insn.dst_in, acc_depth_);
        const std::uint64_t s = wrap(u.src + static_cast<std::uint64_t>(o) * insn.src_out + static_cast<std::uint64_t>(i) * insn.src_in, acc_depth_);
        if (d >= acc_depth_ || (!insn.use_imm && !insn.reset && s >= acc_depth_))
          throw Error(at(index, insn) + ": micro-op " + std::to_string(k) + " at iteration (" + std::to_string(o) + ", " + std::to_string(i) +
                      ") indexes ACC " + std::to_string(d) + " and " + std::to_string(s) + " of " + std::to_string(acc_depth_));
        std::int32_t* dst = acc_.data() + d * lanes;
        if (insn.reset) {
          std::fill(dst, dst + lanes, 0);
          continue;
        }
        const std::int32_t* src = acc_.data() + s * lanes;
        for (std::size_t l = 0; l < lanes; ++l) {
          const std::int32_t a = dst[l], v = insn.use_imm ? insn.imm : src[l];
          const auto ua = static_cast<std::uint32_t>(a), uv = static_cast<std::uint32_t>(v);
          std::int32_t r = a;
          switch (static_cast<AluOp>(insn.alu_op)) {
            case AluOp::Min: r = std::min(a, v); break;
            case AluOp::Max: r = std::max(a, v); break;
            case AluOp::Add: r = static_cast<std::int32_t>(ua + uv); break;  // wraps like the hardware
            case AluOp::Mul: r = static_cast<std::int32_t>(ua * uv); break;
            case AluOp::Shr:
              // Arithmetic right shift; a negative amount shifts left (sim_driver.cc). Amounts past
              // the accumulator's 31 bits saturate at 31 (no shift in C++ may reach 32).
              if (v >= 0) r = a >> std::min(v, 31);
              else r = static_cast<std::int32_t>(ua << std::min(-static_cast<std::int64_t>(v), std::int64_t{31}));
              break;
          }
          dst[l] = r;
        }
      }
  flip_acc_writes(insn, index, counters);
  if (!insn.reset) counters.alu_counter += micro_ops(insn);
}

}  // namespace faultline::models::vta
