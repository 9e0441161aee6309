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

Instruction alu(AluOp op, std::uint32_t bgn, std::uint32_t end, std::uint32_t iter_out, std::uint32_t out_factor, std::int32_t imm) {
  Instruction i;
  i.opcode = static_cast<int>(Opcode::Alu);
  i.alu_op = static_cast<int>(op);
  i.uop_bgn = bgn;
  i.uop_end = end;
  i.iter_out = iter_out;
  i.iter_in = 1;
  i.dst_out = i.src_out = out_factor;
  i.use_imm = true;
  i.imm = imm;
  return i;
}

std::size_t align(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

LoweredLayer lower_conv(const ConvLayer& layer, int images, const VtaConfig& config) {
  layer.validate();
  config.validate();
  if (images < 1) throw Error("layer " + layer.name + ": no images to lower for");
  if (layer.pad_top >= layer.kernel_h || layer.pad_bottom >= layer.kernel_h || layer.pad_left >= layer.kernel_w || layer.pad_right >= layer.kernel_w)
    throw Error("layer " + layer.name + " on VTA: a padding as large as the kernel (outputs that see only padding) is not lowered");
  const auto fail = [&](const std::string& what) { throw Error("layer " + layer.name + " on VTA: " + what); };
  const int batch = config.batch(), block = config.block();
  const std::size_t inp_depth = std::size_t{1} << config.log_inp_depth(), wgt_depth = std::size_t{1} << config.log_wgt_depth(),
                    acc_depth = std::size_t{1} << config.log_acc_depth(), uop_depth = std::size_t{1} << config.log_uop_depth();
  LoweredLayer out;
  out.images = images;
  out.groups = (images + batch - 1) / batch;
  out.in_tiles = (layer.in_channels + block - 1) / block;
  out.out_tiles = (layer.out_channels + block - 1) / block;
  const int nci = out.in_tiles, nco = out.out_tiles, kh = layer.kernel_h, kw = layer.kernel_w;
  const int ho = layer.out_height(), wo = layer.out_width();
  const std::size_t weight_tiles = static_cast<std::size_t>(nco) * nci * kh * kw;
  // Output channel tiles in groups whose weights fit WGT (weight-stationary: a group's weights are
  // loaded once, then every chunk of the layer is computed for its outputs).
  const std::size_t tiles_per_output_tile = static_cast<std::size_t>(nci) * kh * kw;
  if (tiles_per_output_tile > wgt_depth)
    fail("one output channel tile's weights are " + std::to_string(tiles_per_output_tile) + " tiles of " + std::to_string(block) + " x " +
         std::to_string(block) + ", the WGT buffer holds " + std::to_string(wgt_depth) + " (splitting the input channels is not implemented)");
  const int group_tiles = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(nco), wgt_depth / tiles_per_output_tile));
  out.weight_groups = (nco + group_tiles - 1) / group_tiles;
  // The widest chunk of output columns whose input rows, accumulators and micro-ops fit.
  const auto span = [&](int width) { return static_cast<std::size_t>((width - 1) * layer.stride_w + kw); };
  const auto uops_for = [&](int width) { return 2 * (static_cast<std::size_t>(group_tiles) * nci * width + static_cast<std::size_t>(width)); };
  int wt = wo;
  while (wt > 0 && (static_cast<std::size_t>(nci) * kh * span(wt) > inp_depth || static_cast<std::size_t>(group_tiles) * wt > acc_depth || uops_for(wt) > uop_depth)) --wt;
  if (wt == 0)
    fail("one output column needs " + std::to_string(static_cast<std::size_t>(nci) * kh * span(1)) + " INP entries (buffer " + std::to_string(inp_depth) + "), " +
         std::to_string(group_tiles) + " ACC entries (buffer " + std::to_string(acc_depth) + ") and " + std::to_string(uops_for(1)) + " micro-ops (buffer " +
         std::to_string(uop_depth) + ")");
  out.chunk_width = wt;
  const int wt_last = wo % wt == 0 ? wt : wo % wt;

  // DRAM: micro-ops, weights, bias entries, input, output; each region aligned to its entries.
  const std::size_t inp_entry = static_cast<std::size_t>(batch * block), acc_entry = inp_entry * 4, wgt_entry = static_cast<std::size_t>(block * block);
  // Micro-ops: for the full chunk width and for the last one, the GEMM set (per output tile, input
  // tile and column: ACC c·wt + ow, INP t·kh·span + ow·stride, WGT (c·nci + t)·kh·kw), then the ALU
  // set (ACC ow).
  std::vector<std::uint32_t> uops;
  struct UopSet {
    std::uint32_t gemm = 0, alu = 0;
  };
  const auto add_set = [&](int width) {
    UopSet s;
    s.gemm = static_cast<std::uint32_t>(uops.size());
    for (int c = 0; c < group_tiles; ++c)  // c: the output tile within its group
      for (int t = 0; t < nci; ++t)
        for (int ow = 0; ow < width; ++ow)
          uops.push_back(encode_uop({static_cast<std::uint32_t>(c * wt + ow), static_cast<std::uint32_t>(static_cast<std::size_t>(t) * kh * span(width) + static_cast<std::size_t>(ow) * layer.stride_w),
                                     static_cast<std::uint32_t>((c * nci + t) * kh * kw)},
                                    config));
    s.alu = static_cast<std::uint32_t>(uops.size());
    for (int ow = 0; ow < width; ++ow) uops.push_back(encode_uop({static_cast<std::uint32_t>(ow), static_cast<std::uint32_t>(ow), 0}, config));
    return s;
  };
  const UopSet full = add_set(wt), last = wt_last == wt ? full : add_set(wt_last);

  std::vector<std::uint8_t>& dram = out.dram;
  const auto region = [&](std::size_t bytes, std::size_t entry) {
    const std::size_t at = align(dram.size(), entry);
    dram.resize(at + bytes, 0);
    return at;
  };
  const std::size_t uop_at = region(uops.size() * 4, 4);
  std::memcpy(dram.data() + uop_at, uops.data(), uops.size() * 4);
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

  // The program.
  std::vector<Instruction>& p = out.program;
  p.push_back(memory_transfer(Opcode::Load, MemId::Uop, 0, static_cast<std::uint32_t>(uop_at / 4), 1, static_cast<std::uint32_t>(uops.size()),
                       static_cast<std::uint32_t>(uops.size())));
  const auto pad_field = [&](int value, const char* which) {
    if (value > 15) fail(std::string(which) + " padding of " + std::to_string(value) + " entries does not fit LOAD's 4-bit pad field");
    return static_cast<std::uint32_t>(value);
  };
  bool first_chunk = true;
  for (int cg = 0; cg < out.weight_groups; ++cg) {
    const int co0 = cg * group_tiles, ncg = std::min(group_tiles, nco - co0);
    // The group's weight tiles (contiguous in DRAM), once compute is done with the previous group's.
    Instruction weights = memory_transfer(Opcode::Load, MemId::Wgt, 0, static_cast<std::uint32_t>(wgt_at / wgt_entry + static_cast<std::size_t>(co0) * tiles_per_output_tile), 1,
                                          static_cast<std::uint32_t>(static_cast<std::size_t>(ncg) * tiles_per_output_tile),
                                          static_cast<std::uint32_t>(static_cast<std::size_t>(ncg) * tiles_per_output_tile));
    weights.pop_next = !first_chunk;
    p.push_back(weights);
    bool group_first = true;
  for (int g = 0; g < out.groups; ++g)
    for (int oh = 0; oh < ho; ++oh)
      for (int ow0 = 0; ow0 < wo; ow0 += wt) {
        const int width = std::min(wt, wo - ow0);
        const UopSet& set = width == wt ? full : last;
        const int columns = static_cast<int>(span(width));
        const int ih0 = oh * layer.stride_h - layer.pad_top, iw0 = ow0 * layer.stride_w - layer.pad_left;
        const int row_lo = std::max(0, ih0), row_hi = std::min(layer.height, ih0 + kh);
        const int col_lo = std::max(0, iw0), col_hi = std::min(layer.width, iw0 + columns);
        // Load: each input tile's rows ih0 .. ih0 + kh - 1, columns iw0 .. iw0 + columns - 1, zero
        // outside the image. Waits until compute is done with INP (the previous chunk's GEMMs).
        for (int t = 0; t < nci; ++t) {
          Instruction in = memory_transfer(Opcode::Load, MemId::Inp, static_cast<std::uint32_t>(static_cast<std::size_t>(t) * kh * columns),
                                    static_cast<std::uint32_t>(out.input_offset / inp_entry +
                                                               (static_cast<std::size_t>(g * nci + t) * layer.height + row_lo) * layer.width + col_lo),
                                    static_cast<std::uint32_t>(row_hi - row_lo), static_cast<std::uint32_t>(col_hi - col_lo),
                                    static_cast<std::uint32_t>(layer.width));
          in.y_pad0 = pad_field(row_lo - ih0, "top");
          in.y_pad1 = pad_field(ih0 + kh - row_hi, "bottom");
          in.x_pad0 = pad_field(col_lo - iw0, "left");
          in.x_pad1 = pad_field(iw0 + columns - col_hi, "right");
          in.pop_next = t == 0 && !first_chunk && !group_first;  // a group's first chunk: its WGT load popped it
          in.push_next = t == nci - 1;
          p.push_back(in);
        }
        // Compute: ACC from the bias (one entry read width times: x_stride 0), one GEMM per output
        // and input tile looping over the kernel's rows and columns, then shift and clip.
        for (int c = 0; c < ncg; ++c) {
          Instruction b = memory_transfer(Opcode::Load, MemId::Acc, static_cast<std::uint32_t>(c * wt),
                                   static_cast<std::uint32_t>(bias_at / acc_entry + static_cast<std::size_t>(co0 + c)), static_cast<std::uint32_t>(width), 1, 0);
          if (c == 0) {
            b.pop_prev = true;              // the input is loaded
            b.pop_next = !first_chunk;      // the previous chunk's results are stored
          }
          p.push_back(b);
        }
        for (int c = 0; c < ncg; ++c)
          for (int t = 0; t < nci; ++t) {
            Instruction gm;
            gm.opcode = static_cast<int>(Opcode::Gemm);
            gm.uop_bgn = set.gemm + static_cast<std::uint32_t>((c * nci + t) * width);
            gm.uop_end = gm.uop_bgn + static_cast<std::uint32_t>(width);
            gm.iter_out = static_cast<std::uint32_t>(kh);
            gm.src_out = static_cast<std::uint32_t>(columns);
            gm.wgt_out = static_cast<std::uint32_t>(kw);
            gm.iter_in = static_cast<std::uint32_t>(kw);
            gm.src_in = 1;
            gm.wgt_in = 1;
            gm.push_prev = c == ncg - 1 && t == nci - 1;  // INP (and WGT) may be overwritten
            p.push_back(gm);
          }
        // SHR even by 0: a layer's program (and so its timing) depends on its shape only.
        p.push_back(alu(AluOp::Shr, set.alu, set.alu + static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(ncg),
                        static_cast<std::uint32_t>(wt), layer.shift));
        p.push_back(alu(AluOp::Min, set.alu, set.alu + static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(ncg), static_cast<std::uint32_t>(wt), 127));
        Instruction low = alu(AluOp::Max, set.alu, set.alu + static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(ncg), static_cast<std::uint32_t>(wt),
                              layer.relu ? 0 : -128);
        low.push_next = true;  // ACC holds the chunk's results
        p.push_back(low);
        // Store: each output tile's columns of this row.
        for (int c = 0; c < ncg; ++c) {
          Instruction st = memory_transfer(Opcode::Store, MemId::Out, static_cast<std::uint32_t>(c * wt),
                                    static_cast<std::uint32_t>(out.output_offset / inp_entry + (static_cast<std::size_t>(g * nco + co0 + c) * ho + oh) * wo + ow0), 1,
                                    static_cast<std::uint32_t>(width), static_cast<std::uint32_t>(width));
          st.pop_prev = c == 0;
          st.push_prev = c == ncg - 1;
          p.push_back(st);
        }
        first_chunk = false;
        group_first = false;
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
