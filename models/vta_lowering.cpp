#include "models/vta_lowering.h"

#include <algorithm>
#include <cstring>

#include "models/error.h"
#include "models/vta_program.h"

namespace faultline::models::vta {

void ConvLayer::validate() const {
  const auto fail = [this](const std::string& what) { throw Error("layer " + name + ": " + what); };
  if (in_channels < 1 || height < 1 || width < 1 || out_channels < 1) fail("channels, height and width must be at least 1");
  if (kernel_h < 1 || kernel_w < 1 || stride_h < 1 || stride_w < 1) fail("kernel and stride must be at least 1");
  if (pad_top < 0 || pad_left < 0 || pad_bottom < 0 || pad_right < 0) fail("padding must not be negative");
  if (height + pad_top + pad_bottom < kernel_h || width + pad_left + pad_right < kernel_w) fail("the kernel is larger than the padded input");
  if (weights.size() != static_cast<std::size_t>(out_channels) * in_channels * kernel_h * kernel_w)
    fail("has " + std::to_string(weights.size()) + " weights, out × in × kernel needs " +
         std::to_string(static_cast<std::size_t>(out_channels) * in_channels * kernel_h * kernel_w));
  if (!bias.empty() && bias.size() != static_cast<std::size_t>(out_channels)) fail("has " + std::to_string(bias.size()) + " biases for " + std::to_string(out_channels) + " outputs");
  if (shift < 0 || shift > 31) fail("shift must be in [0, 31], got " + std::to_string(shift));
}

namespace {

std::size_t align(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

LoweredLayer lower_conv(const ConvLayer& layer, int images, const VtaConfig& config, const Schedule& requested) {
  layer.validate();
  config.validate();
  if (images < 1) throw Error("layer " + layer.name + ": no images to lower for");
  if (layer.pad_top >= layer.kernel_h || layer.pad_bottom >= layer.kernel_h || layer.pad_left >= layer.kernel_w || layer.pad_right >= layer.kernel_w)
    throw Error("layer " + layer.name + " on VTA: a padding as large as the kernel (outputs that see only padding) is not lowered");
  const auto fail = [&](const std::string& what) { throw Error("layer " + layer.name + " on VTA: " + what); };
  for (const auto& [value, which] : {std::pair<int, const char*>{layer.pad_top, "top"}, {layer.pad_bottom, "bottom"}, {layer.pad_left, "left"}, {layer.pad_right, "right"}})
    if (value > 15) fail(std::string(which) + " padding of " + std::to_string(value) + " entries does not fit LOAD's 4-bit pad field");
  const Schedule s = requested.is_default() ? default_schedule(layer, images, config) : requested;
  const ScheduleCheck check = check_schedule(layer, images, s, config);
  if (!check.valid()) fail("schedule " + to_string(s) + " is invalid (" + reason_name(check.reason) + "): " + check.message);
  const int batch = config.batch(), block = config.block();
  LoweredLayer out;
  out.schedule = s;
  out.images = images;
  // Image groups padded to whole blocks of tile_b (the padding groups compute zeros nobody reads).
  const int groups = (images + batch - 1) / batch;
  out.groups = (groups + s.tile_b - 1) / s.tile_b * s.tile_b;
  out.in_tiles = (layer.in_channels + block - 1) / block;
  out.out_tiles = (layer.out_channels + block - 1) / block;
  const int nci = out.in_tiles, nco = out.out_tiles, kh = layer.kernel_h, kw = layer.kernel_w, sh = layer.stride_h, sw = layer.stride_w;
  const int ho = layer.out_height(), wo = layer.out_width();
  const int tb = s.tile_b, th = s.tile_h, tw = s.tile_w, tci = s.tile_ci, tco = s.tile_co, hn = s.h_nthread, on = s.oc_nthread, vt = s.threads();
  const int rows = (th - 1) * sh + kh, cols = (tw - 1) * sw + kw;
  // Each thread's regions (thread v = vo · hn + vh).
  const std::size_t acc_per = static_cast<std::size_t>(tb) * tco * th * tw, inp_per = static_cast<std::size_t>(tb) * tci * rows * cols,
                    wgt_per = static_cast<std::size_t>(tco) * tci * kh * kw;

  const std::size_t inp_entry = static_cast<std::size_t>(batch * block), acc_entry = inp_entry * 4, wgt_entry = static_cast<std::size_t>(block * block);
  // Micro-ops per thread: the GEMM kernel (over input tile t, kernel row ky, column kx, image
  // group b, output column w; the loops run over output tiles c (iter_out) and output rows r
  // (iter_in)), then the ALU kernel (over b, w). The write to an accumulator repeats every
  // tb · tw micro-ops (check_schedule's hazard rule).
  std::vector<std::uint32_t> uops;
  std::vector<std::uint32_t> gemm_set(static_cast<std::size_t>(vt)), alu_set(static_cast<std::size_t>(vt));
  for (int v = 0; v < vt; ++v) {
    const std::size_t acc0 = static_cast<std::size_t>(v) * acc_per, inp0 = static_cast<std::size_t>(v) * inp_per, wgt0 = static_cast<std::size_t>(v) * wgt_per;
    gemm_set[static_cast<std::size_t>(v)] = static_cast<std::uint32_t>(uops.size());
    for (int t = 0; t < tci; ++t)
      for (int ky = 0; ky < kh; ++ky)
        for (int kx = 0; kx < kw; ++kx)
          for (int b = 0; b < tb; ++b)
            for (int w = 0; w < tw; ++w)
              uops.push_back(encode_uop({static_cast<std::uint32_t>(acc0 + static_cast<std::size_t>(b) * tco * th * tw + static_cast<std::size_t>(w)),
                                         static_cast<std::uint32_t>(inp0 + (static_cast<std::size_t>(b) * tci + t) * rows * cols + static_cast<std::size_t>(ky) * cols +
                                                                    static_cast<std::size_t>(w) * sw + static_cast<std::size_t>(kx)),
                                         static_cast<std::uint32_t>(wgt0 + (static_cast<std::size_t>(t) * kh + ky) * kw + static_cast<std::size_t>(kx))},
                                        config));
    alu_set[static_cast<std::size_t>(v)] = static_cast<std::uint32_t>(uops.size());
    for (int b = 0; b < tb; ++b)
      for (int w = 0; w < tw; ++w) {
        const auto a = static_cast<std::uint32_t>(acc0 + static_cast<std::size_t>(b) * tco * th * tw + static_cast<std::size_t>(w));
        uops.push_back(encode_uop({a, a, 0}, config));
      }
  }

  // DRAM: micro-ops, weights, bias entries, input, output; each region aligned to its entries.
  std::vector<std::uint8_t>& dram = out.dram;
  const auto region = [&](std::size_t bytes, std::size_t entry) {
    const std::size_t at = align(dram.size(), entry);
    dram.resize(at + bytes, 0);
    return at;
  };
  const std::size_t uop_at = region(uops.size() * 4, 4);
  std::memcpy(dram.data() + uop_at, uops.data(), uops.size() * 4);
  const std::size_t weight_tiles = static_cast<std::size_t>(nco) * nci * kh * kw;
  const std::size_t wgt_at = region(weight_tiles * wgt_entry, wgt_entry);
  for (int c = 0; c < nco; ++c)
    for (int t = 0; t < nci; ++t)
      for (int y = 0; y < kh; ++y)
        for (int x = 0; x < kw; ++x) {
          auto* tile = reinterpret_cast<std::int8_t*>(dram.data() + wgt_at + (static_cast<std::size_t>((c * nci + t) * kh + y) * kw + x) * wgt_entry);
          for (int r = 0; r < block; ++r)
            for (int col = 0; col < block; ++col) {
              const int o = c * block + r, i = t * block + col;
              if (o < layer.out_channels && i < layer.in_channels)
                tile[r * block + col] = layer.weights[((static_cast<std::size_t>(o) * layer.in_channels + i) * kh + y) * kw + x];
            }
        }
  const std::size_t bias_at = region(static_cast<std::size_t>(nco) * acc_entry, acc_entry);
  for (int c = 0; c < nco; ++c)
    for (int b = 0; b < batch; ++b)
      for (int r = 0; r < block; ++r) {
        const int o = c * block + r;
        const std::int32_t v = layer.bias.empty() || o >= layer.out_channels ? 0 : layer.bias[static_cast<std::size_t>(o)];
        std::memcpy(dram.data() + bias_at + static_cast<std::size_t>(c) * acc_entry + static_cast<std::size_t>(b * block + r) * 4, &v, 4);
      }
  out.input_offset = region(static_cast<std::size_t>(out.groups) * nci * layer.height * layer.width * inp_entry, inp_entry);
  out.output_offset = region(static_cast<std::size_t>(out.groups) * nco * ho * wo * inp_entry, inp_entry);

  // The program. Steps (a block's thread and input channel step) in stream order; token rules
  // (every pop waits on an instruction earlier in the stream):
  //  - load step s pops compute→load after the GEMM of step s − vt (the last user of its slot),
  //    pushes load→compute; the GEMM of step s pops it, and pushes compute→load for step s + vt;
  //  - thread block k's first ACC load pops store→compute after block k − vt's stores (the last
  //    user of its ACC region); its last ALU pushes compute→store; its stores pop that and push
  //    store→compute for block k + vt.
  std::vector<Instruction>& p = out.program;
  p.push_back(memory_transfer(Opcode::Load, MemId::Uop, 0, static_cast<std::uint32_t>(uop_at / 4), 1, static_cast<std::uint32_t>(uops.size()),
                              static_cast<std::uint32_t>(uops.size())));
  const int nb = out.groups / tb, nco_blocks = nco / tco, nh_blocks = ho / th, nw_blocks = wo / tw, nci_steps = nci / tci;
  const long long total_steps = static_cast<long long>(nb) * nco_blocks * nh_blocks * nw_blocks * nci_steps;
  const long long total_blocks = static_cast<long long>(nb) * nco_blocks * nh_blocks * nw_blocks;
  long long step = 0, thread_block = 0;
  for (int bo = 0; bo < nb; ++bo)
    for (int cp = 0; cp < nco_blocks / on; ++cp)
      for (int hp = 0; hp < nh_blocks / hn; ++hp)
        for (int wb = 0; wb < nw_blocks; ++wb) {
          // The threads' block origins.
          const auto co0 = [&](int v) { return (cp * on + v / hn) * tco; };
          const auto oh0 = [&](int v) { return (hp * hn + v % hn) * th; };
          const int ow0 = wb * tw;
          // ACC from the bias: every accumulator of output tile c starts at c's bias entry.
          for (int v = 0; v < vt; ++v)
            for (int b = 0; b < tb; ++b)
              for (int c = 0; c < tco; ++c) {
                Instruction bias = memory_transfer(Opcode::Load, MemId::Acc,
                                                   static_cast<std::uint32_t>(static_cast<std::size_t>(v) * acc_per + (static_cast<std::size_t>(b) * tco + c) * th * tw),
                                                   static_cast<std::uint32_t>(bias_at / acc_entry + static_cast<std::size_t>(co0(v) + c)), static_cast<std::uint32_t>(th * tw), 1, 0);
                bias.pop_next = b == 0 && c == 0 && thread_block + v >= vt;
                p.push_back(bias);
              }
          for (int cs = 0; cs < nci_steps; ++cs)
            for (int v = 0; v < vt; ++v, ++step) {
              const std::size_t first = p.size();
              for (int b = 0; b < tb; ++b)
                for (int t = 0; t < tci; ++t) {
                  const int g = bo * tb + b, ci = cs * tci + t;
                  const int ih0 = oh0(v) * sh - layer.pad_top, iw0 = ow0 * sw - layer.pad_left;
                  const int row_lo = std::max(0, ih0), row_hi = std::min(layer.height, ih0 + rows);
                  const int col_lo = std::max(0, iw0), col_hi = std::min(layer.width, iw0 + cols);
                  Instruction in = memory_transfer(
                      Opcode::Load, MemId::Inp, static_cast<std::uint32_t>(static_cast<std::size_t>(v) * inp_per + (static_cast<std::size_t>(b) * tci + t) * rows * cols),
                      static_cast<std::uint32_t>(out.input_offset / inp_entry + (static_cast<std::size_t>(g * nci + ci) * layer.height + row_lo) * layer.width + col_lo),
                      static_cast<std::uint32_t>(row_hi - row_lo), static_cast<std::uint32_t>(col_hi - col_lo), static_cast<std::uint32_t>(layer.width));
                  in.y_pad0 = static_cast<std::uint32_t>(row_lo - ih0);
                  in.y_pad1 = static_cast<std::uint32_t>(ih0 + rows - row_hi);
                  in.x_pad0 = static_cast<std::uint32_t>(col_lo - iw0);
                  in.x_pad1 = static_cast<std::uint32_t>(iw0 + cols - col_hi);
                  p.push_back(in);
                }
              // The step's weights: tco output tiles × (tci input tiles × kh × kw) tiles.
              Instruction weights = memory_transfer(
                  Opcode::Load, MemId::Wgt, static_cast<std::uint32_t>(static_cast<std::size_t>(v) * wgt_per),
                  static_cast<std::uint32_t>(wgt_at / wgt_entry + (static_cast<std::size_t>(co0(v)) * nci + static_cast<std::size_t>(cs) * tci) * kh * kw),
                  static_cast<std::uint32_t>(tco), static_cast<std::uint32_t>(tci * kh * kw), static_cast<std::uint32_t>(nci * kh * kw));
              weights.push_next = true;
              p.push_back(weights);
              p[first].pop_next = step >= vt;
              Instruction gm;
              gm.opcode = static_cast<int>(Opcode::Gemm);
              gm.uop_bgn = gemm_set[static_cast<std::size_t>(v)];
              gm.uop_end = alu_set[static_cast<std::size_t>(v)];
              gm.iter_out = static_cast<std::uint32_t>(tco);
              gm.iter_in = static_cast<std::uint32_t>(th);
              // Loop factors only where the loop runs more than once (the field is unused otherwise).
              if (tco > 1) {
                gm.dst_out = static_cast<std::uint32_t>(th * tw);
                gm.wgt_out = static_cast<std::uint32_t>(tci * kh * kw);
              }
              if (th > 1) {
                gm.dst_in = static_cast<std::uint32_t>(tw);
                gm.src_in = static_cast<std::uint32_t>(sh * cols);
              }
              gm.pop_prev = true;
              gm.push_prev = step + vt < total_steps;
              p.push_back(gm);
            }
          // Requantize each thread's block (SHR even by 0: a layer's program and so its timing
          // depend on its shape only), clip, and store it.
          for (int v = 0; v < vt; ++v) {
            for (AluOp op : {AluOp::Shr, AluOp::Min, AluOp::Max}) {
              Instruction a;
              a.opcode = static_cast<int>(Opcode::Alu);
              a.alu_op = static_cast<int>(op);
              a.uop_bgn = alu_set[static_cast<std::size_t>(v)];
              a.uop_end = a.uop_bgn + static_cast<std::uint32_t>(tb * tw);
              a.iter_out = static_cast<std::uint32_t>(tco);
              a.iter_in = static_cast<std::uint32_t>(th);
              if (tco > 1) a.dst_out = a.src_out = static_cast<std::uint32_t>(th * tw);
              if (th > 1) a.dst_in = a.src_in = static_cast<std::uint32_t>(tw);
              a.use_imm = true;
              a.imm = op == AluOp::Shr ? layer.shift : op == AluOp::Min ? 127 : layer.relu ? 0 : -128;
              a.push_next = op == AluOp::Max;  // ACC holds the block's results
              p.push_back(a);
            }
          }
          for (int v = 0; v < vt; ++v, ++thread_block) {
            const std::size_t first = p.size();
            for (int b = 0; b < tb; ++b)
              for (int c = 0; c < tco; ++c) {
                const int g = bo * tb + b;
                p.push_back(memory_transfer(Opcode::Store, MemId::Out,
                                            static_cast<std::uint32_t>(static_cast<std::size_t>(v) * acc_per + (static_cast<std::size_t>(b) * tco + c) * th * tw),
                                            static_cast<std::uint32_t>(out.output_offset / inp_entry + (static_cast<std::size_t>(g * nco + co0(v) + c) * ho + oh0(v)) * wo + ow0),
                                            static_cast<std::uint32_t>(th), static_cast<std::uint32_t>(tw), static_cast<std::uint32_t>(wo)));
              }
            p[first].pop_prev = true;
            p.back().push_prev = thread_block + vt < total_blocks;
          }
        }
  Instruction finish;
  finish.opcode = static_cast<int>(Opcode::Finish);
  p.push_back(finish);
  try {
    insn_bin(p, config);  // every field fits its bit width
  } catch (const Error& e) {
    fail(e.what());
  }
  return out;
}

namespace {
// Calls f(byte in the DRAM image, element of the NCHW tensor) for every element of `images` ×
// `channels` × `plane` stored packed from byte `offset` in `tiles` channel tiles (see the header).
template <class F>
void for_each_packed(int images, int channels, std::size_t plane, int tiles, std::size_t offset, const VtaConfig& config, F&& f) {
  const int batch = config.batch(), block = config.block();
  for (int n = 0; n < images; ++n)
    for (int ch = 0; ch < channels; ++ch)
      for (std::size_t pix = 0; pix < plane; ++pix) {
        const std::size_t entry = (static_cast<std::size_t>(n / batch) * tiles + static_cast<std::size_t>(ch / block)) * plane + pix;
        f(offset + entry * static_cast<std::size_t>(batch * block) + static_cast<std::size_t>((n % batch) * block + ch % block),
          (static_cast<std::size_t>(n) * channels + ch) * plane + pix);
      }
}
}  // namespace

void write_conv_input(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::int8_t* x, std::vector<std::uint8_t>& dram) {
  for_each_packed(lowered.images, layer.in_channels, static_cast<std::size_t>(layer.height) * layer.width, lowered.in_tiles, lowered.input_offset, config,
                  [&](std::size_t byte, std::size_t element) { dram[byte] = static_cast<std::uint8_t>(x[element]); });
}

void read_conv_output(const LoweredLayer& lowered, const ConvLayer& layer, const VtaConfig& config, const std::vector<std::uint8_t>& dram, std::int8_t* y) {
  for_each_packed(lowered.images, layer.out_channels, static_cast<std::size_t>(layer.out_height()) * layer.out_width(), lowered.out_tiles,
                  lowered.output_offset, config, [&](std::size_t byte, std::size_t element) { y[element] = static_cast<std::int8_t>(dram[byte]); });
}

void reference_conv(const ConvLayer& layer, int images, const std::int8_t* x, std::int8_t* y) {
  layer.validate();
  const int ho = layer.out_height(), wo = layer.out_width();
  for (int n = 0; n < images; ++n)
    for (int o = 0; o < layer.out_channels; ++o)
      for (int r = 0; r < ho; ++r)
        for (int col = 0; col < wo; ++col) {
          std::int64_t sum = layer.bias.empty() ? 0 : layer.bias[static_cast<std::size_t>(o)];
          for (int i = 0; i < layer.in_channels; ++i)
            for (int ky = 0; ky < layer.kernel_h; ++ky)
              for (int kx = 0; kx < layer.kernel_w; ++kx) {
                const int ih = r * layer.stride_h - layer.pad_top + ky, iw = col * layer.stride_w - layer.pad_left + kx;
                if (ih < 0 || ih >= layer.height || iw < 0 || iw >= layer.width) continue;
                sum += static_cast<std::int64_t>(x[((static_cast<std::size_t>(n) * layer.in_channels + i) * layer.height + ih) * layer.width + iw]) *
                       layer.weights[((static_cast<std::size_t>(o) * layer.in_channels + i) * layer.kernel_h + ky) * layer.kernel_w + kx];
              }
          // int32 accumulation (wrapping), then an arithmetic shift (floor) and the clip.
          const auto acc = static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(sum)));
          const std::int32_t shifted = acc >> layer.shift;
          const std::int32_t clipped = std::min(127, std::max(layer.relu ? 0 : -128, shifted));
          y[((static_cast<std::size_t>(n) * layer.out_channels + o) * ho + r) * wo + col] = static_cast<std::int8_t>(clipped);
        }
}

}  // namespace faultline::models::vta
