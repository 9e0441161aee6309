// VTA's instruction set on the functional machine (models/vta_isa.h): the encoding at hw_spec.h's
// bit positions, and programs modelled on tvm-vta's unit tests (GEMM with reset, padded loads,
// every ALU operation with and without an immediate, relu, shift-and-clip), each checked against
// results computed here independently; token deadlocks and out-of-range indices are errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "models/error.h"
#include "models/vta_isa.h"
#include "models/vta_lowering.h"
#include "models/vta_program.h"
#ifdef FAULTLINE_VTA_CYCLE_LEVEL
#include "sim/vta_cycle.h"
#endif

using namespace faultline;
using namespace faultline::models::vta;

namespace {

Instruction load(MemId mem, std::uint32_t sram, std::uint32_t dram, std::uint32_t y, std::uint32_t x, std::uint32_t stride) {
  return memory_transfer(Opcode::Load, mem, sram, dram, y, x, stride);
}
Instruction store(std::uint32_t sram, std::uint32_t dram, std::uint32_t y, std::uint32_t x, std::uint32_t stride) {
  return memory_transfer(Opcode::Store, MemId::Out, sram, dram, y, x, stride);
}
Instruction gemm(bool reset, std::uint32_t bgn, std::uint32_t end, std::uint32_t iter_out = 1, std::uint32_t iter_in = 1) {
  Instruction i;
  i.opcode = static_cast<int>(Opcode::Gemm);
  i.reset = reset;
  i.uop_bgn = bgn;
  i.uop_end = end;
  i.iter_out = iter_out;
  i.iter_in = iter_in;
  return i;
}
Instruction alu(AluOp op, std::uint32_t bgn, std::uint32_t end, bool use_imm, std::int32_t imm) {
  Instruction i = gemm(false, bgn, end);
  i.opcode = static_cast<int>(Opcode::Alu);
  i.alu_op = static_cast<int>(op);
  i.use_imm = use_imm;
  i.imm = imm;
  return i;
}
// Token flags as tvm-vta's programs set them (an instruction's module pops before and pushes after it).
Instruction with(Instruction i, bool pop_prev, bool pop_next, bool push_prev, bool push_next) {
  i.pop_prev = pop_prev;
  i.pop_next = pop_next;
  i.push_prev = push_prev;
  i.push_next = push_next;
  return i;
}
Instruction finish() {
  Instruction i;
  i.opcode = static_cast<int>(Opcode::Finish);
  return i;
}

#ifdef FAULTLINE_VTA_CYCLE_LEVEL
// Built a second time as vta_cycle_test: every program then runs on the cycle level
// (sim/vta_cycle.h) too, whose DRAM image and counters must equal the functional machine's, and
// which must refuse exactly the programs the functional machine refuses; the checks against
// independent results below then hold for both levels.
VtaCounters run_program(const VtaConfig& c, const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram, const VtaFaults& faults = {}) {
  static sim::VtaCycleSimulation* simulation = new sim::VtaCycleSimulation(c, sim::VtaTiming{});  // one per process, never torn down
  std::vector<std::uint8_t> reference = dram;
  std::string functional_error;
  VtaCounters functional;
  try {
    VtaMachine m(c);
    m.set_faults(faults);
    functional = m.run(program, reference);
  } catch (const Error& e) {
    functional_error = e.what();
  }
  simulation->configure(c);
  simulation->machine().set_faults(faults);
  try {
    const sim::VtaCycleReport r = simulation->run(program, dram);
    EXPECT_EQ(functional_error, "") << "the cycle level ran a program the functional level refuses";
    EXPECT_TRUE(dram == reference) << "the cycle level's DRAM image differs from the functional level's";
    EXPECT_EQ(counters_json(r.counters), counters_json(functional));
    EXPECT_GT(r.cycles, 0u);
    return r.counters;
  } catch (const Error& e) {
    EXPECT_NE(functional_error, "") << "the cycle level refused a program the functional level runs: " << e.what();
    throw;
  }
}
#else
VtaCounters run_program(const VtaConfig& c, const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram, const VtaFaults& faults = {}) {
  VtaMachine m(c);
  m.set_faults(faults);
  return m.run(program, dram);
}
#endif

// A DRAM image built region by region; each region starts at a multiple of `align` bytes so that
// an element index (bytes / entry size) addresses it.
struct Dram {
  std::vector<std::uint8_t> bytes;
  std::uint32_t put(const void* data, std::size_t n, std::size_t entry) {
    while (bytes.size() % 1024) bytes.push_back(0);
    const std::size_t at = bytes.size();
    bytes.resize(at + n);
    std::memcpy(bytes.data() + at, data, n);
    return static_cast<std::uint32_t>(at / entry);
  }
  std::uint32_t reserve(std::size_t n, std::size_t entry) {
    std::vector<std::uint8_t> zeros(n, 0);
    return put(zeros.data(), n, entry);
  }
};

}  // namespace

// The bit positions of hw_spec.h's bit fields for the default configuration (DESIGN.md, "VTA").
TEST(VtaIsa, EncodingPutsFieldsWhereHwSpecDoes) {
  const VtaConfig c;
  Instruction l = load(MemId::Inp, 5, 7, 3, 2, 9);
  l.push_next = true;
  l.x_pad1 = 1;
  const Word128 w = encode(l, c);
  EXPECT_EQ(w[0] & 7u, 0u);                  // opcode LOAD
  EXPECT_EQ((w[0] >> 6) & 1u, 1u);           // push_next
  EXPECT_EQ((w[0] >> 7) & 7u, 2u);           // mem_id INP [9:7]
  EXPECT_EQ((w[0] >> 10) & 0xFFFFu, 5u);     // sram_base [25:10]
  EXPECT_EQ((w[0] >> 26) & 0xFFFFFFFFu, 7u); // dram_base [57:26]
  EXPECT_EQ(w[1] & 0xFFFFu, 3u);             // y_size [79:64]
  EXPECT_EQ((w[1] >> 16) & 0xFFFFu, 2u);     // x_size [95:80]
  EXPECT_EQ((w[1] >> 32) & 0xFFFFu, 9u);     // x_stride [111:96]
  EXPECT_EQ((w[1] >> 60) & 0xFu, 1u);        // x_pad1 [127:124]
  Instruction g = gemm(true, 3, 9, 4, 5);
  g.dst_out = 1;
  g.wgt_in = 2;
  const Word128 gw = encode(g, c);
  EXPECT_EQ((gw[0] >> 7) & 1u, 1u);           // reset [7]
  EXPECT_EQ((gw[0] >> 8) & 0x1FFFu, 3u);      // uop_bgn [20:8]
  EXPECT_EQ((gw[0] >> 21) & 0x3FFFu, 9u);     // uop_end [34:21]
  EXPECT_EQ((gw[0] >> 35) & 0x3FFFu, 4u);     // iter_out [48:35]
  EXPECT_EQ((gw[0] >> 49) & 0x3FFFu, 5u);     // iter_in [62:49]
  EXPECT_EQ(gw[1] & 0x7FFu, 1u);              // dst_out [74:64]
  EXPECT_EQ((gw[1] >> 54) & 0x3FFu, 2u);      // wgt_in [127:118]
  Instruction a = alu(AluOp::Shr, 0, 1, true, -3);
  const Word128 aw = encode(a, c);
  EXPECT_EQ((aw[1] >> 44) & 7u, 3u);          // alu_op [110:108]
  EXPECT_EQ((aw[1] >> 47) & 1u, 1u);          // use_imm [111]
  EXPECT_EQ((aw[1] >> 48) & 0xFFFFu, 0xFFFDu);  // imm [127:112], two's complement
  EXPECT_EQ(encode_uop({1, 2, 3}, c), 1u | (2u << 11) | (3u << 22));  // dst[10:0], src[21:11], wgt[31:22]

  // Every kind survives encode → decode and text → instruction.
  std::mt19937 rng(3);
  for (int k = 0; k < 200; ++k) {
    Instruction x;
    x.opcode = static_cast<int>(rng() % 5);
    x.pop_prev = rng() & 1;
    x.push_next = rng() & 1;
    if (x.opcode <= 1) {
      x.mem_id = static_cast<int>(rng() % 5);
      x.sram_base = rng() & 0xFFFF;
      x.dram_base = static_cast<std::uint32_t>(rng());
      x.y_size = rng() & 0xFFFF;
      x.x_pad0 = rng() & 0xF;
    } else if (x.opcode == 2 || x.opcode == 4) {
      x.uop_bgn = rng() & 0x1FFF;
      x.uop_end = rng() & 0x3FFF;
      x.iter_in = rng() & 0x3FFF;
      x.src_in = rng() & 0x7FF;
      if (x.opcode == 2) x.wgt_out = rng() & 0x3FF;
      else {
        x.alu_op = static_cast<int>(rng() % 5);
        x.imm = static_cast<std::int16_t>(rng());
      }
    }
    const Instruction y = decode(encode(x, c), c);
    EXPECT_EQ(to_text(y), to_text(x));
    EXPECT_EQ(to_text(from_text(to_text(x), "t")), to_text(x));
  }
  Instruction too_big = load(MemId::Inp, 70000, 0, 1, 1, 1);
  EXPECT_THROW(encode(too_big, c), Error);
  EXPECT_THROW(from_text("GEMM uop_bgn=1 nonsense=2", "t:1"), Error);
  EXPECT_THROW(from_text("ALU alu_op=DIV", "t:1"), Error);
}

// GEMM with reset, then accumulation, over a 2 x 3 tile loop driven by the index factors; for
// the default configuration and for BLOCK 8 with BATCH 2 (a 64 KiB WGT buffer, so that the 32-bit
// micro-op still holds its three indices).
TEST(VtaIsa, GemmMatchesAnIndependentProduct) {
  for (const auto& [log_batch, log_block] : {std::pair{0, 4}, std::pair{1, 3}}) {
    VtaConfig c;
    c.log_batch = log_batch;
    c.log_block = log_block;
    if (log_block == 3) c.log_wgt_buff_size = 16;
    const int b = c.batch(), n = c.block();
    VtaMachine m(c);
    std::mt19937 rng(7);
    const int tiles_o = 2, tiles_i = 3;  // acc entries o; input/weight entries i
    std::vector<std::int8_t> inp(static_cast<std::size_t>(tiles_i * b * n)), wgt(static_cast<std::size_t>(tiles_o * tiles_i * n * n));
    for (auto& v : inp) v = static_cast<std::int8_t>(rng());
    for (auto& v : wgt) v = static_cast<std::int8_t>(rng());
    // acc[o] = Σ_i inp[i] · wgt[o·3 + i]ᵀ: uop {dst 0, src 0, wgt 0}, iter_out o (dst +1, wgt +3), iter_in i (src +1, wgt +1).
    Dram dram;
    const std::uint32_t uops[] = {encode_uop({0, 0, 0}, c)};
    const std::uint32_t u = dram.put(uops, sizeof uops, 4);
    const std::uint32_t x = dram.put(inp.data(), inp.size(), m.entry_bytes(2));
    const std::uint32_t w = dram.put(wgt.data(), wgt.size(), m.entry_bytes(1));
    const std::uint32_t out = dram.reserve(static_cast<std::size_t>(tiles_o * b * n), m.entry_bytes(4));
    Instruction reset = gemm(true, 0, 1, tiles_o, 1);
    reset.dst_out = 1;
    Instruction mac = gemm(false, 0, 1, tiles_o, tiles_i);
    mac.dst_out = 1;
    mac.wgt_out = tiles_i;
    mac.src_in = 1;
    mac.wgt_in = 1;
    // Tokens: the loads hand the buffers to compute, compute hands ACC to store.
    const std::vector<Instruction> program = {load(MemId::Uop, 0, u, 1, 1, 1), load(MemId::Inp, 0, x, 1, tiles_i, tiles_i),
                                              with(load(MemId::Wgt, 0, w, 1, tiles_o * tiles_i, tiles_o * tiles_i), false, false, false, true),
                                              with(reset, true, false, false, false), mac, with(mac, false, false, false, true),
                                              with(store(0, out, 1, tiles_o, tiles_o), true, false, false, false), finish()};
    const VtaCounters k = run_program(c, program, dram.bytes);
    for (int o = 0; o < tiles_o; ++o)
      for (int bb = 0; bb < b; ++bb)
        for (int r = 0; r < n; ++r) {
          std::int32_t sum = 0;
          for (int i = 0; i < tiles_i; ++i)
            for (int col = 0; col < n; ++col)
              sum += inp[static_cast<std::size_t>((i * b + bb) * n + col)] * wgt[static_cast<std::size_t>(((o * tiles_i + i) * n + r) * n + col)];
          sum *= 2;  // the product was accumulated twice after one reset
          const auto got = static_cast<std::int8_t>(dram.bytes[out * static_cast<std::size_t>(b * n) + static_cast<std::size_t>((o * b + bb) * n + r)]);
          ASSERT_EQ(got, static_cast<std::int8_t>(sum & 0xFF)) << "batch " << b << " block " << n << " o " << o << " r " << r;
        }
    EXPECT_EQ(k.gemm_counter, 2u * tiles_o * tiles_i);  // reset passes are not counted
    EXPECT_EQ(k.inp_load_nbytes, static_cast<std::uint64_t>(tiles_i * b * n));
    EXPECT_EQ(k.wgt_load_nbytes, static_cast<std::uint64_t>(tiles_o * tiles_i * n * n));
    EXPECT_EQ(k.uop_load_nbytes, 4u);
    EXPECT_EQ(k.out_store_nbytes, static_cast<std::uint64_t>(tiles_o * b * n));
  }
}

// The micro-op kernels against an independent int64 product, extreme codes included, for batches
// 1..4: the plain loop for blocks 8, 16, 32, and for 16 × 16 the machine's kernel on widened pairs
// (AVX2 on this machine) and its portable loop; accumulators that wrap; three passes of the same
// input.
TEST(VtaIsa, GemmBlockKernelsEqualTheDefinition) {
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> code(-128, 127);
  for (std::size_t block : {8u, 16u, 32u}) {
    for (std::size_t batch = 1; batch <= 4; ++batch) {
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<std::int8_t> in(batch * block), wgt(block * block);
        for (auto& v : in) v = static_cast<std::int8_t>(trial == 0 ? -128 : code(gen));
        for (auto& v : wgt) v = static_cast<std::int8_t>(trial == 0 ? -128 : trial == 1 ? 127 : code(gen));
        std::vector<std::int32_t> acc(batch * block);
        for (std::size_t k = 0; k < acc.size(); ++k) acc[k] = k % 3 == 0 ? 2147483600 : static_cast<std::int32_t>(gen());
        std::vector<std::int32_t> expected(acc.size());
        for (std::size_t b = 0; b < batch; ++b)
          for (std::size_t r = 0; r < block; ++r) {
            std::int64_t sum = 0;
            for (std::size_t c = 0; c < block; ++c) sum += std::int64_t{in[b * block + c]} * wgt[r * block + c];
            expected[b * block + r] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[b * block + r]) + 3u * static_cast<std::uint32_t>(sum));
          }
        std::vector<std::int32_t> scalar = acc;
        for (int pass = 0; pass < 3; ++pass) gemm_block_scalar(in.data(), wgt.data(), scalar.data(), batch, block);
        ASSERT_EQ(scalar, expected) << "block " << block << " batch " << batch << " trial " << trial;
        if (block != 16) continue;
        std::vector<std::int16_t> pairs(256);
        widen_tile16_pairs(wgt.data(), pairs.data());
        std::vector<std::int32_t> kernel = acc, portable = acc;
        for (int pass = 0; pass < 3; ++pass) {
          gemm_block16_pairs(pairs.data(), in.data(), kernel.data(), batch);
          gemm_block16_pairs_portable(pairs.data(), in.data(), portable.data(), batch);
        }
        ASSERT_EQ(kernel, expected) << "batch " << batch << " trial " << trial;
        ASSERT_EQ(portable, expected) << "batch " << batch << " trial " << trial;
      }
    }
  }
}

// A padded 2 x 3 INP load (x_stride 5 in a 4 x 5 image, one zero row above and below, one zero
// column each side) moved to ACC by a GEMM with the identity matrix and stored: every entry
// in place, every pad zero.
TEST(VtaIsa, PaddedLoadFillsZeros) {
  const VtaConfig c;
  VtaMachine m(c);
  const int n = 16;
  std::vector<std::int8_t> image(static_cast<std::size_t>(4 * 5 * n));
  for (std::size_t k = 0; k < image.size(); ++k) image[k] = static_cast<std::int8_t>(1 + k % 100);
  std::vector<std::int8_t> identity(static_cast<std::size_t>(n * n), 0);
  for (int r = 0; r < n; ++r) identity[static_cast<std::size_t>(r * n + r)] = 1;
  Dram dram;
  const int rows = 2 + 2, cols = 3 + 2;  // padded
  std::vector<std::uint32_t> uops;
  for (int e = 0; e < rows * cols; ++e) uops.push_back(encode_uop({static_cast<std::uint32_t>(e), static_cast<std::uint32_t>(e), 0}, c));
  const std::uint32_t u = dram.put(uops.data(), uops.size() * 4, 4);
  const std::uint32_t x = dram.put(image.data(), image.size(), 16);
  const std::uint32_t w = dram.put(identity.data(), identity.size(), 256);
  const std::uint32_t out = dram.reserve(static_cast<std::size_t>(rows * cols * n), 16);
  Instruction padded = load(MemId::Inp, 0, x + 1 * 5 + 1, 2, 3, 5);  // rows 1-2, columns 1-3 of the image
  padded.y_pad0 = padded.y_pad1 = padded.x_pad0 = padded.x_pad1 = 1;
  const std::vector<Instruction> program = {load(MemId::Uop, 0, u, 1, static_cast<std::uint32_t>(uops.size()), static_cast<std::uint32_t>(uops.size())),
                                            padded, with(load(MemId::Wgt, 0, w, 1, 1, 1), false, false, false, true),
                                            with(gemm(true, 0, static_cast<std::uint32_t>(uops.size())), true, false, false, false),
                                            with(gemm(false, 0, static_cast<std::uint32_t>(uops.size())), false, false, false, true),
                                            with(store(0, out, 1, static_cast<std::uint32_t>(rows * cols), static_cast<std::uint32_t>(rows * cols)), true, false,
                                                 false, false),
                                            finish()};
  const VtaCounters k = run_program(c, program, dram.bytes);
  for (int r = 0; r < rows; ++r)
    for (int col = 0; col < cols; ++col)
      for (int l = 0; l < n; ++l) {
        const bool pad = r == 0 || r == rows - 1 || col == 0 || col == cols - 1;
        const std::int8_t expected = pad ? 0 : image[static_cast<std::size_t>(((r - 1 + 1) * 5 + (col - 1 + 1)) * n + l)];
        ASSERT_EQ(static_cast<std::int8_t>(dram.bytes[static_cast<std::size_t>(out) * 16 + static_cast<std::size_t>((r * cols + col) * n + l)]), expected)
            << r << "," << col << "," << l;
      }
  EXPECT_EQ(k.inp_load_nbytes, 2u * 3u * 16u);  // padding is not counted
}

// Every ALU operation, with an immediate and with a vector operand, on ACC values loaded from
// DRAM; then relu (MAX 0) and shift-and-clip (SHR, MIN 127, MAX -128) as TVM lowers requantization.
TEST(VtaIsa, AluOperationsMatchTheirDefinitions) {
  const VtaConfig c;
  const int n = 16;
  std::mt19937 rng(11);
  std::vector<std::int32_t> a(n), b(n);
  for (int l = 0; l < n; ++l) {
    a[static_cast<std::size_t>(l)] = static_cast<std::int32_t>(rng() % 4001) - 2000;
    b[static_cast<std::size_t>(l)] = static_cast<std::int32_t>(rng() % 11) - 5;  // small: shift amounts and factors
  }
  const auto expect_op = [&](AluOp op, bool use_imm, std::int32_t imm, const std::function<std::int32_t(std::int32_t, std::int32_t)>& f) {
    VtaMachine m(c);
    Dram dram;
    const std::uint32_t uops[] = {encode_uop({0, 1, 0}, c)};
    const std::uint32_t u = dram.put(uops, sizeof uops, 4);
    std::vector<std::int32_t> acc(a);
    acc.insert(acc.end(), b.begin(), b.end());
    const std::uint32_t x = dram.put(acc.data(), acc.size() * 4, 64);
    const std::uint32_t out = dram.reserve(16, 16);
    const std::vector<Instruction> program = {load(MemId::Uop, 0, u, 1, 1, 1), load(MemId::Acc, 0, x, 1, 2, 2),
                                              with(alu(op, 0, 1, use_imm, imm), false, false, false, true),
                                              with(store(0, out, 1, 1, 1), true, false, false, false), finish()};
    const VtaCounters k = run_program(c, program, dram.bytes);
    EXPECT_EQ(k.alu_counter, 1u);
    EXPECT_EQ(k.acc_load_nbytes, 2u * 64u);
    for (int l = 0; l < n; ++l) {
      const std::int32_t r = f(a[static_cast<std::size_t>(l)], use_imm ? imm : b[static_cast<std::size_t>(l)]);
      ASSERT_EQ(static_cast<std::int8_t>(dram.bytes[static_cast<std::size_t>(out) * 16 + static_cast<std::size_t>(l)]), static_cast<std::int8_t>(r & 0xFF))
          << alu_name(static_cast<int>(op)) << (use_imm ? " imm " : " vector ") << a[static_cast<std::size_t>(l)] << ", " << b[static_cast<std::size_t>(l)];
    }
  };
  const auto shr = [](std::int32_t x, std::int32_t s) { return s >= 0 ? x / (1 << s) - ((x % (1 << s)) < 0 ? 1 : 0) : x * (1 << -s); };
  for (bool imm : {false, true}) {
    const std::int32_t v = imm ? -3 : 0;
    expect_op(AluOp::Min, imm, v, [](std::int32_t x, std::int32_t y) { return x < y ? x : y; });
    expect_op(AluOp::Max, imm, v, [](std::int32_t x, std::int32_t y) { return x > y ? x : y; });
    expect_op(AluOp::Add, imm, v, [](std::int32_t x, std::int32_t y) { return x + y; });
    expect_op(AluOp::Mul, imm, v, [](std::int32_t x, std::int32_t y) { return x * y; });
    expect_op(AluOp::Shr, imm, imm ? 3 : 0, shr);  // vector amounts include negative ones: a left shift
  }
  expect_op(AluOp::Shr, true, -2, shr);
  expect_op(AluOp::Max, true, 0, [](std::int32_t x, std::int32_t) { return x > 0 ? x : 0; });  // relu

  // Requantization as TVM's VTA flow lowers it: shift right by 4, then clip to int8.
  VtaMachine m(c);
  Dram dram;
  const std::uint32_t uops[] = {encode_uop({0, 0, 0}, c)};
  const std::uint32_t u = dram.put(uops, sizeof uops, 4);
  const std::uint32_t x = dram.put(a.data(), a.size() * 4, 64);
  const std::uint32_t out = dram.reserve(16, 16);
  const std::vector<Instruction> program = {load(MemId::Uop, 0, u, 1, 1, 1), load(MemId::Acc, 0, x, 1, 1, 1), alu(AluOp::Shr, 0, 1, true, 4),
                                            alu(AluOp::Min, 0, 1, true, 127), with(alu(AluOp::Max, 0, 1, true, -128), false, false, false, true),
                                            with(store(0, out, 1, 1, 1), true, false, false, false), finish()};
  run_program(c, program, dram.bytes);
  for (int l = 0; l < n; ++l) {
    const std::int32_t q = std::min(127, std::max(-128, shr(a[static_cast<std::size_t>(l)], 4)));
    EXPECT_EQ(static_cast<std::int8_t>(dram.bytes[static_cast<std::size_t>(out) * 16 + static_cast<std::size_t>(l)]), q) << a[static_cast<std::size_t>(l)];
  }
}

// Tokens: the load module pushes to compute, compute pops; the order in the stream does not
// matter as long as the tokens allow it. A pop that nothing pushes is a deadlock, reported at
// once; an index outside a buffer names the instruction.
TEST(VtaIsa, TokensDeadlocksAndRangeErrors) {
  const VtaConfig c;
  Dram dram;
  const std::uint32_t uops[] = {encode_uop({0, 0, 0}, c)};
  const std::uint32_t u = dram.put(uops, sizeof uops, 4);
  const std::uint32_t x = dram.reserve(16, 16);
  Instruction li = load(MemId::Inp, 0, x, 1, 1, 1);
  li.push_next = true;
  Instruction g = gemm(false, 0, 1);
  g.pop_prev = true;
  // The GEMM comes first in the stream but waits for the load's token.
  EXPECT_NO_THROW(run_program(c, {load(MemId::Uop, 0, u, 1, 1, 1), g, li, finish()}, dram.bytes));
  const auto message = [&](const std::vector<Instruction>& program) {
    std::vector<std::uint8_t> image = dram.bytes;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      run_program(c, program, image);
    } catch (const Error& e) {
      EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Instruction far = load(MemId::Inp, 2047, x, 1, 2, 2);
  std::string e = message({far, finish()});
  EXPECT_NE(e.find("instruction 0 (LOAD INP)"), std::string::npos) << e;
  EXPECT_NE(e.find("2048"), std::string::npos) << e;
  Instruction beyond = load(MemId::Inp, 0, 1u << 30, 1, 1, 1);
  e = message({beyond, finish()});
  EXPECT_NE(e.find("DRAM"), std::string::npos) << e;
  Instruction bad_flag = load(MemId::Wgt, 0, 0, 1, 1, 1);
  bad_flag.pop_prev = true;
  e = message({bad_flag, finish()});
  EXPECT_NE(e.find("load module has no previous module"), std::string::npos) << e;
  Instruction stray_gemm = gemm(false, 0, 1);
  stray_gemm.dst_in = 100;
  stray_gemm.iter_in = 30;
  e = message({load(MemId::Uop, 0, u, 1, 1, 1), stray_gemm, finish()});
  EXPECT_NE(e.find("instruction 1 (GEMM): micro-op 0 at iteration (0, 21)"), std::string::npos) << e;
  e = message({load(MemId::Uop, 0, u, 1, 1, 1)});
  EXPECT_NE(e.find("no FINISH"), std::string::npos) << e;
  // Last: after a deadlock the cycle level's processes are left waiting.
  e = message({load(MemId::Uop, 0, u, 1, 1, 1), g, finish()});
  EXPECT_NE(e.find("deadlock"), std::string::npos) << e;
  EXPECT_NE(e.find("instruction 1 (GEMM)"), std::string::npos) << e;
}

// insn.bin and the text form round-trip; bad files name the file and line.
TEST(VtaIsa, ProgramFiles) {
  const VtaConfig c;
  const std::vector<Instruction> program = {load(MemId::Uop, 0, 0, 1, 1, 1), gemm(true, 0, 1), alu(AluOp::Add, 0, 1, true, -7), store(0, 0, 1, 1, 1), finish()};
  const std::string bin = insn_bin(program, c);
  ASSERT_EQ(bin.size(), program.size() * 16);
  const std::string dir = ::testing::TempDir();
  {
    FILE* f = std::fopen((dir + "/vta_insn.bin").c_str(), "wb");
    std::fwrite(bin.data(), 1, bin.size(), f);
    std::fclose(f);
  }
  const std::vector<Instruction> back = read_insn_bin(dir + "/vta_insn.bin", c);
  EXPECT_EQ(disassemble(back), disassemble(program));
  {
    FILE* f = std::fopen((dir + "/vta_bad.txt").c_str(), "w");
    std::fputs("# a comment\nLOAD mem=UOP x_size=1\nGEMM uop_end=99999\n", f);
    std::fclose(f);
  }
  try {
    read_asm(dir + "/vta_bad.txt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vta_bad.txt:3: field 'uop_end'"), std::string::npos) << e.what();
  }
  {
    FILE* f = std::fopen((dir + "/vta_short.bin").c_str(), "wb");
    std::fwrite(bin.data(), 1, 20, f);
    std::fclose(f);
  }
  EXPECT_THROW(read_insn_bin(dir + "/vta_short.bin", c), Error);
}

// Whole layers lowered to VTA programs (models/vta_lowering.h) against the same arithmetic
// computed directly: convolutions as LeNet-5 has them (5 x 5, padding 2, ReLU; channels below
// BLOCK), a strided 3 x 3 convolution whose channels span several tiles and whose rows need
// chunks, a dense layer (1 x 1 over a 1 x rows image), and BATCH 2 / BLOCK 8 with an odd image
// count. Random int8 weights and inputs, biases of either sign; the shift keeps most results
// inside int8 and some clipped.
TEST(VtaLowering, LayersMatchTheDirectArithmetic) {
  struct Case {
    ConvLayer layer;
    int images;
    VtaConfig config;
  };
  const auto make = [](std::string name, int cin, int h, int w, int cout, int k, int stride, int pad, int shift, bool relu) {
    ConvLayer l;
    l.name = std::move(name);
    l.in_channels = cin, l.height = h, l.width = w, l.out_channels = cout, l.kernel_h = l.kernel_w = k;
    l.stride_h = l.stride_w = stride;
    l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = pad;
    // |Σ| of K products of uniform int8 codes is about 74² √K (one σ): a shift that maps 1.5 σ to
    // 127 keeps most results inside int8 and clips some.
    l.shift = shift >= 0 ? shift : static_cast<int>(std::floor(std::log2(74.0 * 74.0 * std::sqrt(cin * k * k) * 1.5 / 127.0)));
    l.relu = relu;
    std::mt19937 rng(static_cast<unsigned>(cin * 131 + cout));
    l.weights.resize(static_cast<std::size_t>(cout * cin * k * k));
    for (auto& v : l.weights) v = static_cast<std::int8_t>(rng());
    for (int o = 0; o < cout; ++o) l.bias.push_back(static_cast<std::int32_t>(rng() % 20001) - 10000);
    return l;
  };
  VtaConfig small;
  small.log_batch = 1;
  small.log_block = 3;
  small.log_wgt_buff_size = 16;
  VtaConfig wgt64;
  wgt64.log_wgt_buff_size = 14;
  std::vector<Case> cases = {{make("conv1", 1, 28, 28, 6, 5, 1, 2, -1, true), 2, VtaConfig{}},
                             {make("conv2", 6, 14, 14, 16, 5, 1, 0, -1, true), 2, VtaConfig{}},
                             {make("strided", 20, 9, 11, 40, 3, 2, 1, -1, false), 1, VtaConfig{}},
                             {make("dense", 400, 1, 37, 120, 1, 1, 0, -1, false), 1, VtaConfig{}},
                             {make("small", 12, 7, 6, 10, 3, 1, 1, -1, true), 3, small},
                             // Weights beyond WGT: blocks of output tiles and steps of input tiles
                             // (27 tiles per output tile, 64 in WGT: blocks of 1 of the 5 output
                             // tiles; 288 per output tile and 1024 in WGT: blocks of 2 of 32).
                             {make("grouped", 40, 6, 7, 70, 3, 1, 1, -1, false), 2, wgt64},
                             {make("big", 512, 8, 8, 512, 3, 1, 1, -1, false), 1, VtaConfig{}}};
  for (auto& [layer, images, config] : cases) {
    SCOPED_TRACE(layer.name);
    std::mt19937 rng(3);
    std::vector<std::int8_t> x(static_cast<std::size_t>(images * layer.in_channels * layer.height * layer.width));
    for (auto& v : x) v = static_cast<std::int8_t>(rng());
    const LoweredLayer lowered = lower_conv(layer, images, config);
    if (layer.name == "grouped") EXPECT_EQ(to_string(lowered.schedule), "b1 h6 w7 ci3 co1 hn1 on1");
    if (layer.name == "big") EXPECT_EQ(to_string(lowered.schedule), "b1 h4 w8 ci32 co2 hn1 on1");
    std::vector<std::uint8_t> dram = lowered.dram;
    write_conv_input(lowered, layer, config, x.data(), dram);
    const VtaCounters k = run_program(config, lowered.program, dram);
    const std::size_t outputs = static_cast<std::size_t>(images * layer.out_channels * layer.out_height() * layer.out_width());
    std::vector<std::int8_t> got(outputs), want(outputs);
    read_conv_output(lowered, layer, config, dram, got.data());
    reference_conv(layer, images, x.data(), want.data());
    ASSERT_EQ(got, want);
    // Not trivial: values spread over the int8 range, some clipped.
    EXPECT_GT(std::count_if(want.begin(), want.end(), [](std::int8_t v) { return v != 0 && v != 127 && v != -128; }), static_cast<long>(outputs / 4));
    EXPECT_GT(std::count_if(want.begin(), want.end(), [](std::int8_t v) { return v == 127; }), 0);
    // Every MAC of the padded channel tiles, once per output pixel and kernel tap.
    const std::uint64_t macs_per_uop = static_cast<std::uint64_t>(config.batch()) * config.block() * config.block();
    EXPECT_EQ(k.gemm_counter * macs_per_uop, static_cast<std::uint64_t>(lowered.groups) * config.batch() * lowered.out_tiles * lowered.in_tiles * config.block() *
                                                 config.block() * layer.kernel_h * layer.kernel_w * layer.out_height() * layer.out_width());
  }
  // Layers that do not fit say what does not: here a 46 × 46 kernel's input window (46 rows of 50
  // columns for the 5 outputs of a row: 2300 entries, INP holds 2048).
  ConvLayer huge = make("huge", 16, 50, 50, 16, 46, 1, 0, -1, false);
  try {
    lower_conv(huge, 1, VtaConfig{});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer huge on VTA: no schedule fits (INP needs 2300 entries (36800 bytes), the buffer holds 2048"), std::string::npos) << e.what();
  }
}

// Unreliable VTA (VtaFaults): flipped bits are as many as the rate says (a binomial count within
// 5 σ, two-sided 99.9999 %), land where the counters say (DRAM: every flipped bit of the image
// counted), are the same for the same seed and differ for another, change a layer's output when
// weights or accumulators are hit, and a micro-op hit at a high rate sends GEMMs elsewhere instead
// of stopping the run.
TEST(VtaFaults, RatesSeedsAndEffects) {
  const VtaConfig c;
  ConvLayer layer;
  layer.name = "conv";
  layer.in_channels = 16, layer.height = 8, layer.width = 8, layer.out_channels = 16, layer.kernel_h = layer.kernel_w = 3;
  layer.pad_top = layer.pad_left = layer.pad_bottom = layer.pad_right = 1;
  layer.shift = 10;
  std::mt19937 rng(4);
  layer.weights.resize(16 * 16 * 9);
  for (auto& v : layer.weights) v = static_cast<std::int8_t>(rng());
  std::vector<std::int8_t> x(16 * 8 * 8);
  for (auto& v : x) v = static_cast<std::int8_t>(rng());
  const LoweredLayer lowered = lower_conv(layer, 1, c);
  std::vector<std::uint8_t> image = lowered.dram;
  write_conv_input(lowered, layer, c, x.data(), image);
  const auto run_with = [&](const VtaFaults& f, VtaCounters* counters = nullptr) {
    std::vector<std::uint8_t> dram = image;
    const VtaCounters k = run_program(c, lowered.program, dram, f);
    if (counters) *counters = k;
    return dram;
  };
  const std::vector<std::uint8_t> clean = run_with({});
  const auto output = [&](const std::vector<std::uint8_t>& dram) {
    return std::vector<std::uint8_t>(dram.begin() + static_cast<std::ptrdiff_t>(lowered.output_offset), dram.end());
  };
  const auto within = [](std::uint64_t count, double n, double p) {
    const double mean = n * p, sigma = std::sqrt(n * p * (1 - p));
    return std::abs(static_cast<double>(count) - mean) <= 5 * sigma;
  };

  // DRAM: every bit of the image before the run (a program that only finishes shows them all).
  VtaFaults dram_faults;
  dram_faults.dram = 1e-3;
  dram_faults.seed = 7;
  VtaCounters k;
  std::vector<std::uint8_t> flipped = image;
  Instruction finish;
  finish.opcode = static_cast<int>(Opcode::Finish);
  k = run_program(c, {finish}, flipped, dram_faults);
  EXPECT_TRUE(within(k.dram_flips, static_cast<double>(image.size()) * 8, 1e-3)) << k.dram_flips;
  std::uint64_t differing = 0;
  for (std::size_t b = 0; b < image.size(); ++b) differing += static_cast<std::uint64_t>(__builtin_popcount(flipped[b] ^ image[b]));
  EXPECT_EQ(differing, k.dram_flips);
  EXPECT_NE(output(run_with(dram_faults)), output(clean));

  // WGT: the bits of every loaded weight tile; the layer's output changes; same seed, same bits.
  VtaFaults w;
  w.wgt = 1e-3;
  w.seed = 7;
  const std::vector<std::uint8_t> w1 = run_with(w, &k);
  EXPECT_EQ(k.wgt_load_nbytes, 9u * 256);  // the default schedule: the whole 8 x 8 output in one block
  EXPECT_TRUE(within(k.wgt_flips, 9.0 * 256 * 8, 1e-3)) << k.wgt_flips;
  EXPECT_GT(k.wgt_flips, 0u);
  EXPECT_NE(output(w1), output(clean));
  EXPECT_EQ(run_with(w), w1);
  w.seed = 8;
  EXPECT_NE(run_with(w), w1);

  // ACC: the bias loads and every GEMM/ALU write-back (64 output pixels, 9 taps, 16 x 32 bits per entry).
  VtaFaults a;
  a.acc = 1e-5;
  a.seed = 3;
  const std::vector<std::uint8_t> a1 = run_with(a, &k);
  const double acc_bits = 64.0 * 16 * 32 * (1 /* bias */ + 9 /* GEMM taps */ + 2 /* MIN, MAX */ + 1 /* SHR */);
  EXPECT_TRUE(within(k.acc_flips, acc_bits, 1e-5)) << k.acc_flips << " of " << acc_bits;
  EXPECT_NE(output(a1), output(clean));

  // UOP at a high rate: GEMMs go to other entries (addresses wrap as in the hardware), no error.
  VtaFaults u;
  u.uop = 0.05;
  u.seed = 1;
  EXPECT_NO_THROW(run_with(u, &k));
  EXPECT_GT(k.uop_flips, 0u);

  // A rate outside [0, 1] is an error naming the buffer.
  VtaMachine m(c);
  VtaFaults bad;
  bad.inp = 1.5;
  try {
    m.set_faults(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inp"), std::string::npos) << e.what();
  }
}

namespace {
ConvLayer shape_only(const char* name, int cin, int h, int w, int cout, int k, int pad) {
  ConvLayer l;
  l.name = name;
  l.in_channels = cin, l.height = h, l.width = w, l.out_channels = cout, l.kernel_h = l.kernel_w = k;
  l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = pad;
  return l;
}
}  // namespace

// Issue 15: each reason a configuration is invalid, with the numbers worked out by hand for the
// default configuration (INP 2048 entries of 16 B, WGT 1024 of 256 B, ACC 2048 of 64 B, UOP 8192
// of 4 B; hazard window 1 + log2(16) = 5 micro-ops).
TEST(VtaSchedule, InvalidReasonsWithTheirNumbers) {
  const VtaConfig c;
  EXPECT_EQ(acc_hazard_window(c), 5);
  const ConvLayer a = shape_only("a", 64, 32, 32, 64, 3, 1);  // 4 x 4 channel tiles, 32 x 32 outputs
  const ConvLayer b = shape_only("b", 256, 8, 8, 256, 3, 1);  // 16 x 16 tiles, 8 x 8 outputs
  const auto expect = [&](const ConvLayer& layer, Schedule s, InvalidReason reason, const std::string& message) {
    SCOPED_TRACE(layer.name + " " + to_string(s));
    const ScheduleCheck k = check_schedule(layer, 1, s, c);
    EXPECT_EQ(reason_name(k.reason), std::string(reason_name(reason)));
    EXPECT_EQ(k.message, message);
  };
  // 2 row threads x 4 input tiles x (8 - 1 + 3) rows x (32 - 1 + 3) columns.
  expect(a, {1, 8, 32, 4, 1, 2, 1}, InvalidReason::InpBuffer, "INP needs 2720 entries (43520 bytes), the buffer holds 2048 (32768 bytes)");
  // 8 output tiles x 16 input tiles x 9 taps.
  expect(b, {1, 1, 8, 16, 8, 1, 1}, InvalidReason::WgtBuffer, "WGT needs 1152 entries (294912 bytes), the buffer holds 1024 (262144 bytes)");
  // 4 output tiles x 32 x 32 outputs.
  expect(a, {1, 32, 32, 1, 4, 1, 1}, InvalidReason::AccBuffer, "ACC needs 4096 entries (262144 bytes), the buffer holds 2048 (131072 bytes)");
  // 2 threads x (2 input tiles x 49 taps x 64 columns + 64 ALU micro-ops); INP 2 x 2 x 7 x 70 = 1960 fits.
  expect(shape_only("d", 32, 7, 70, 32, 7, 0), {1, 1, 64, 2, 1, 1, 2}, InvalidReason::UopBuffer,
         "UOP needs 12672 entries (50688 bytes), the buffer holds 8192 (32768 bytes)");
  // A row of 70000 pixels: LOAD's 16-bit x_stride.
  expect(shape_only("e", 16, 1, 70000, 16, 1, 0), {1, 1, 10, 1, 1, 1, 1}, InvalidReason::InstructionField,
         "LOAD INP x_stride (the input width) is 70000, the field has 16 bits");
  // 9 taps accumulate into each of 4 columns: the same accumulator every 4 micro-ops.
  expect(a, {1, 1, 4, 1, 1, 1, 1}, InvalidReason::AccHazard,
         "each accumulator is written again after 4 micro-ops (tile_b x tile_w), the GEMM pipeline writes back after 5");
  expect(a, {1, 1, 32, 4, 4, 1, 2}, InvalidReason::ThreadSplit, "oc_nthread 2 does not divide the 1 output channel blocks");
  expect(b, {1, 8, 8, 1, 1, 2, 1}, InvalidReason::ThreadSplit, "h_nthread 2 does not divide the 1 row blocks");
  // A valid one and what it needs: 4 threads; rows 2 - 1 + 3, columns 16 - 1 + 3.
  const ScheduleCheck ok = check_schedule(a, 1, {1, 2, 16, 2, 2, 2, 2}, c);
  EXPECT_TRUE(ok.valid()) << ok.message;
  EXPECT_EQ(ok.inp_entries, 4u * 2 * 4 * 18);
  EXPECT_EQ(ok.wgt_entries, 4u * 2 * 2 * 9);
  EXPECT_EQ(ok.acc_entries, 4u * 2 * 2 * 16);
  EXPECT_EQ(ok.uops, 4u * (2 * 9 * 16 + 16));
  // Not in the space: a knob that does not divide its extent.
  try {
    check_schedule(a, 1, {1, 1, 5, 1, 1, 1, 1}, c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer a on VTA: schedule tile_w 5 does not divide the layer's 32");
  }
  // Space sizes: 6 x 6 row and column splits, 3 x 3 channel splits, 2 x 2 threads; a dense layer
  // 400 -> 120 at batch 1: 3 input splits (1, 5, 25 tiles) x 4 output splits (1, 2, 4, 8) x 2.
  EXPECT_EQ(schedule_space(schedule_extents(a, 1, c)).size(), 1296u);
  EXPECT_EQ(schedule_space(schedule_extents(shape_only("fc", 400, 1, 1, 120, 1, 0), 1, c)).size(), 24u);
  EXPECT_EQ(to_string(default_schedule(a, 1, c)), "b1 h8 w32 ci4 co4 hn1 on1");
}

// Every configuration of small layers: the valid ones compute exactly the direct arithmetic (the
// schedule changes the program, never the values), the invalid ones are refused by the lowering
// with their reason.
TEST(VtaSchedule, EveryValidScheduleGivesTheSameBits) {
  VtaConfig small;  // BATCH 2, BLOCK 8, small buffers so that every reason occurs
  small.log_batch = 1;
  small.log_block = 3;
  small.log_inp_buff_size = 11, small.log_wgt_buff_size = 11, small.log_acc_buff_size = 12, small.log_uop_buff_size = 9;
  struct Case {
    ConvLayer layer;
    int images;
  };
  std::vector<Case> cases = {{shape_only("conv", 12, 6, 6, 20, 3, 1), 3}, {shape_only("strided", 9, 7, 9, 16, 3, 0), 4}, {shape_only("dense", 24, 1, 6, 17, 1, 0), 2}};
  cases[1].layer.stride_h = cases[1].layer.stride_w = 2;
  std::map<std::string, int> reasons;
  for (auto& [layer, images] : cases) {
    std::mt19937 rng(7);
    layer.shift = 6;
    layer.relu = layer.name == "conv";
    layer.weights.resize(static_cast<std::size_t>(layer.out_channels * layer.in_channels * layer.kernel_h * layer.kernel_w));
    for (auto& v : layer.weights) v = static_cast<std::int8_t>(rng() % 64) - 32;
    for (int o = 0; o < layer.out_channels; ++o) layer.bias.push_back(static_cast<std::int32_t>(rng() % 401) - 200);
    std::vector<std::int8_t> x(static_cast<std::size_t>(images * layer.in_channels * layer.height * layer.width));
    for (auto& v : x) v = static_cast<std::int8_t>(rng());
    const std::size_t outputs = static_cast<std::size_t>(images * layer.out_channels * layer.out_height() * layer.out_width());
    std::vector<std::int8_t> want(outputs);
    reference_conv(layer, images, x.data(), want.data());
    int valid = 0;
    for (const Schedule& s : schedule_space(schedule_extents(layer, images, small))) {
      SCOPED_TRACE(layer.name + " " + to_string(s));
      const ScheduleCheck k = check_schedule(layer, images, s, small);
      ++reasons[reason_name(k.reason)];
      if (!k.valid()) {
        try {
          lower_conv(layer, images, small, s);
          ADD_FAILURE() << "an invalid schedule was lowered";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find(std::string("(") + reason_name(k.reason) + "): " + k.message), std::string::npos) << e.what();
        }
        continue;
      }
      ++valid;
      const LoweredLayer lowered = lower_conv(layer, images, small, s);
      std::vector<std::uint8_t> dram = lowered.dram;
      write_conv_input(lowered, layer, small, x.data(), dram);
      run_program(small, lowered.program, dram);
      std::vector<std::int8_t> got(outputs);
      read_conv_output(lowered, layer, small, dram, got.data());
      ASSERT_EQ(got, want);
    }
    EXPECT_GT(valid, 3) << layer.name;
  }
  for (const char* r : {"valid", "inp_buffer", "wgt_buffer", "acc_buffer", "uop_buffer", "instruction_field", "acc_hazard", "thread_split"}) EXPECT_GT(reasons[r], 0) << r;
}
