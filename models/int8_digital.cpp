// `int8_digital`: integer digital hardware. Weights are quantized symmetrically (per tensor or per
// output channel) and stored as two's-complement codes in which bits flip at a given bit error
// rate; each input vector is quantized symmetrically with its own scale (dynamic per-vector
// activation quantization, so that a sample's result does not depend on its batch); products
// accumulate exactly in integers (int32 semantics) and are rescaled to real values
// (requantization) by s_x · s_w (Jacob et al., "Quantization and Training of Neural Networks for
// Efficient Integer-Arithmetic-Only Inference", CVPR 2018, symmetric variant).
#include "models/int8_digital.h"

#include <cmath>

#include "models/error.h"
#include "models/int16_gemm.h"
#include "models/mvm_int8.h"
#include "models/philox.h"
#include "models/quantize.h"
#include "models/substrate.h"

namespace faultline::models {

Int8Substrate::Int8Substrate(const Int8DigitalConfig& c)
    : weight_bits_(c.weight_bits), activation_bits_(c.activation_bits), per_channel_(c.per_channel), ber_(c.bit_error_rate),
      drop_(c.approx_drop_bits) {
  if (drop_ > 0 && (weight_bits_ > 8 || activation_bits_ > 8))
    throw Error("int8_digital: approx_drop_bits needs weight_bits and activation_bits of at most 8 (int8 multipliers)");
}

void Int8Substrate::program(const MatrixRM& w, const LayerInfo& layer, const ProgramContext& context) {
  codes_.resize(w.rows(), w.cols());
  scales_.resize(w.rows());
  const int qmax = (1 << (weight_bits_ - 1)) - 1;
  const float tensor_max = w.cwiseAbs().maxCoeff();
  flipped_ = 0;
  const CounterRng flips(context.seed, stream_id(context.trial, layer.index, layer.part, Purpose::BitFlip));
  const std::uint32_t mask = (1u << weight_bits_) - 1;
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    const float m = per_channel_ ? w.row(r).cwiseAbs().maxCoeff() : tensor_max;
    const float scale = m > 0 ? m / static_cast<float>(qmax) : 1.0f;
    scales_[r] = scale;
    for (Eigen::Index c = 0; c < w.cols(); ++c) {
      long q = std::lround(w(r, c) / scale);
      q = std::max<long>(-qmax, std::min<long>(qmax, q));
      if (ber_ > 0) {
        // Each stored bit flips independently with probability ber (stored as two's complement).
        std::uint32_t bits = static_cast<std::uint32_t>(q) & mask;
        const std::uint64_t element = static_cast<std::uint64_t>(r * w.cols() + c);
        for (int b = 0; b < weight_bits_; ++b)
          if (flips.uniform(element * static_cast<std::uint64_t>(weight_bits_) + static_cast<std::uint64_t>(b)) < ber_) {
            bits ^= 1u << b;
            ++flipped_;
          }
        // Sign-extend the weight_bits-wide code back to an integer.
        q = (bits & (1u << (weight_bits_ - 1))) ? static_cast<long>(bits) - (1L << weight_bits_) : static_cast<long>(bits);
      }
      codes_(r, c) = static_cast<float>(q);
    }
  }
  // Float sums of integers are exact below 2^24; beyond that accumulate in double.
  const double worst = static_cast<double>(w.cols()) * ((1 << (activation_bits_ - 1)) - 1) * (1 << (weight_bits_ - 1));
  exact_in_float_ = worst < 16777216.0;
  if (!exact_in_float_) codes_double_ = codes_.cast<double>();
  // The int8 form an integer product takes (behavioural truncated multipliers or RTL).
  codes_int8_.clear();
  if (weight_bits_ <= 8) {
    codes_int8_.resize(static_cast<std::size_t>(codes_.size()));
    for (std::size_t k = 0; k < codes_int8_.size(); ++k) codes_int8_[k] = static_cast<std::int8_t>(codes_.data()[k]);
  }
  if (drop_ > 0) plan_truncated_products();
}

// The truncated multiplier (models/mvm_int8.h, approx_multiply) adds the partial products
// a_i·b_k·2^(i+k) of the magnitudes whose column i + k is at least `drop`. Grouped by the
// weight's bit i: |approx(a, b)| = Σ_i a_i·2^i · hi(|b|, drop − i), hi(m, t) = m with its t low
// bits cleared (t ≤ 0: m). The bits i ≥ drop give hi(|a|, drop)·|b|, an exact product; each bit
// i < drop gives a plane whose activations are hi(|b|, drop − i) (zero once drop − i ≥ 8: |b| ≤
// 128). With the signs applied per operand, the layer's truncated MACs are one exact GEMM over
// the planes (every sum an integer, exact in float below 2^24, else in double), which gives the
// int32 sums of int8_matrix_vector bit for bit (tests/unit/models_test.cpp) at GEMM speed.
void Int8Substrate::plan_truncated_products() {
  const Eigen::Index out = codes_.rows(), in = codes_.cols();
  approx_planes_.clear();
  std::vector<int> bits;  // the weight bit of each plane (-1: the exact high part)
  if (drop_ < 8) {
    approx_planes_.push_back(0);
    bits.push_back(-1);
  }
  for (int i = 0; i < std::min(drop_, 8); ++i)
    if (drop_ - i < 8) {
      approx_planes_.push_back(drop_ - i);
      bits.push_back(i);
    }
  const Eigen::Index planes = static_cast<Eigen::Index>(approx_planes_.size());
  const std::uint32_t high_mask = drop_ < 8 ? ~((1u << drop_) - 1u) : 0u;
  // Weight (r, c)'s part in plane p: its magnitude's high bits (bits[p] < 0) or one low bit, signed.
  const auto plane_value = [&](Eigen::Index r, Eigen::Index c, Eigen::Index p) {
    const int code = codes_int8_[static_cast<std::size_t>(r * in + c)];
    const std::uint32_t magnitude = static_cast<std::uint32_t>(std::abs(code));
    const int bit = bits[static_cast<std::size_t>(p)];
    const std::int32_t part = static_cast<std::int32_t>(bit < 0 ? (magnitude & high_mask) : (magnitude & (1u << bit)));
    return code < 0 ? -part : part;
  };
  // |Σ| ≤ Σ_j |a_j|·|b_j| ≤ inputs · 128 · 128 over every partial sum.
  approx_in_float_ = static_cast<double>(in) * 128.0 * 128.0 < 16777216.0;
  // Every plane's terms of one input share the sign of a·b, so any partial sum of a lane is at most
  // the same bound: int32 holds it below 2^31. Then the 16-bit planes serve every product, and the
  // float ones (the fallback) are not kept.
  approx_weights16_.clear();
  approx_depth16_ = 0;
  approx_weights_.resize(0, 0);
  if (planes > 0 && static_cast<double>(in) * 128.0 * 128.0 < 2147483648.0) {
    approx_depth16_ = int16_gemm_depth(static_cast<std::size_t>(planes * in));
    approx_weights16_.assign(static_cast<std::size_t>(out) * approx_depth16_, 0);
    for (Eigen::Index r = 0; r < out; ++r)
      for (Eigen::Index p = 0; p < planes; ++p)
        for (Eigen::Index c = 0; c < in; ++c)
          approx_weights16_[static_cast<std::size_t>(r) * approx_depth16_ + static_cast<std::size_t>(p * in + c)] = static_cast<std::int16_t>(plane_value(r, c, p));
  } else {
    approx_weights_.resize(out, planes * in);
    for (Eigen::Index r = 0; r < out; ++r)
      for (Eigen::Index p = 0; p < planes; ++p)
        for (Eigen::Index c = 0; c < in; ++c) approx_weights_(r, p * in + c) = static_cast<float>(plane_value(r, c, p));
  }
}

void Int8Substrate::set_integer_product(IntegerProduct product) {
  if (weight_bits_ > 8 || activation_bits_ > 8)
    throw Error("int8_digital: an int8 integer product needs weight_bits and activation_bits of at most 8");
  product_ = std::move(product);
}

namespace {

// Activation codes of one row: round(x / scale), ties away (IEEE division and adds: the same bits
// at any vector width; the AVX2 clone is chosen at load time).
__attribute__((target_clones("avx2", "default"))) void quantize_row(const float* x, float* codes, long n, float scale) {
  for (long c = 0; c < n; ++c) codes[c] = round_half_away(x[c] / scale);
}

// One row's truncated-multiplier planes (plan_truncated_products) as 16-bit integers: for each
// plane p, sign(a)·(|a| with its keep_bits[p] low bits cleared), `in` values per plane.
__attribute__((target_clones("avx2", "default"))) void planes_row(const std::int8_t* a, std::int16_t* out, long in, const int* keep_bits,
                                                                  long planes) {
  for (long p = 0; p < planes; ++p) {
    const std::int32_t keep = ~((std::int32_t{1} << keep_bits[p]) - 1);
    for (long c = 0; c < in; ++c) {
      const std::int32_t v = a[c];
      const std::int32_t part = (v < 0 ? -v : v) & keep;
      out[p * in + c] = static_cast<std::int16_t>(v < 0 ? -part : part);
    }
  }
}

}  // namespace

void Int8Substrate::multiply(const Eigen::Ref<const MatrixRM>& x, Eigen::Ref<MatrixRM> y, const MultiplyContext&) const {
  const int qmax = (1 << (activation_bits_ - 1)) - 1;
  MatrixRM xq(x.rows(), x.cols());
  Eigen::VectorXf xs(x.rows());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float m = x.row(r).cwiseAbs().maxCoeff();
    const float scale = m > 0 ? m / static_cast<float>(qmax) : 1.0f;
    xs[r] = scale;
    // |x / scale| ≤ qmax ≤ 2^15 (up to rounding), inside round_half_away's range.
    quantize_row(x.row(r).data(), xq.row(r).data(), x.cols(), scale);
  }
  if (product_ || drop_ > 0) {
    // Integer codes through an int8 product: the RTL's, or the truncated multipliers' (the
    // behavioural twin of rtl/approx_mac_array). The int32 sums are the values the float GEMM
    // below would give exactly, so both paths agree bit for bit when the products are exact.
    std::vector<std::int8_t> xi(static_cast<std::size_t>(xq.size()));
    for (std::size_t k = 0; k < xi.size(); ++k) xi[k] = static_cast<std::int8_t>(xq.data()[k]);
    if (product_) {
      std::vector<std::int32_t> acc(static_cast<std::size_t>(x.rows() * codes_.rows()));
      product_(xi.data(), x.rows(), acc.data());
      for (Eigen::Index r = 0; r < y.rows(); ++r)
        for (Eigen::Index c = 0; c < y.cols(); ++c) y(r, c) = static_cast<float>(acc[static_cast<std::size_t>(r * y.cols() + c)]);
    } else {
      // The truncated products as one exact GEMM over the planes (plan_truncated_products).
      const Eigen::Index in = codes_.cols(), planes = static_cast<Eigen::Index>(approx_planes_.size());
      if (!approx_weights16_.empty()) {
        // In 16-bit integers (int16_gemm_nt): exact int32 sums, converted to float as the
        // float / double GEMM below rounds the same exact sums (nearest even).
        const std::size_t depth = approx_depth16_, outs = static_cast<std::size_t>(codes_.rows());
        thread_local std::vector<std::int16_t> xp16;
        thread_local std::vector<std::int32_t> sums;
        xp16.resize(static_cast<std::size_t>(x.rows()) * depth);
        sums.resize(static_cast<std::size_t>(x.rows()) * outs);
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
          const std::int8_t* row = xi.data() + r * in;
          std::int16_t* dst = xp16.data() + static_cast<std::size_t>(r) * depth;
          planes_row(row, dst, in, approx_planes_.data(), planes);
          std::fill(dst + planes * in, dst + depth, std::int16_t{0});  // the padding
        }
        int16_gemm_nt(xp16.data(), static_cast<std::size_t>(x.rows()), approx_weights16_.data(), outs, depth, sums.data());
        for (Eigen::Index r = 0; r < y.rows(); ++r)
          for (Eigen::Index c = 0; c < y.cols(); ++c) y(r, c) = static_cast<float>(sums[static_cast<std::size_t>(r) * outs + static_cast<std::size_t>(c)]);
      } else {
        MatrixRM xp(x.rows(), planes * in);
        std::vector<std::int32_t> magnitude(static_cast<std::size_t>(in));
        std::vector<float> sign(static_cast<std::size_t>(in));
        for (Eigen::Index r = 0; r < x.rows(); ++r) {
          const std::int8_t* row = xi.data() + r * in;
          for (Eigen::Index c = 0; c < in; ++c) {
            magnitude[static_cast<std::size_t>(c)] = std::abs(static_cast<std::int32_t>(row[c]));
            sign[static_cast<std::size_t>(c)] = row[c] < 0 ? -1.0f : 1.0f;
          }
          // Plane by plane, so that each inner loop is contiguous (and vectorizes).
          for (Eigen::Index p = 0; p < planes; ++p) {
            const std::int32_t keep = ~((std::int32_t{1} << approx_planes_[static_cast<std::size_t>(p)]) - 1);
            float* out = xp.data() + r * planes * in + p * in;
            for (Eigen::Index c = 0; c < in; ++c)
              out[c] = sign[static_cast<std::size_t>(c)] * static_cast<float>(magnitude[static_cast<std::size_t>(c)] & keep);
          }
        }
        if (planes == 0) {
          y.setZero();  // every partial product falls below the dropped columns
        } else if (approx_in_float_) {
          y.noalias() = xp * approx_weights_.transpose();
        } else {
          Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> acc = xp.cast<double>() * approx_weights_.cast<double>().transpose();
          y = acc.cast<float>();
        }
      }
    }
  } else if (exact_in_float_) {
    y.noalias() = xq * codes_.transpose();
  } else {
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> acc = xq.cast<double>() * codes_double_.transpose();
    y = acc.cast<float>();
  }
  for (Eigen::Index r = 0; r < y.rows(); ++r)
    for (Eigen::Index c = 0; c < y.cols(); ++c) y(r, c) *= xs[r] * scales_[c];
}

void Int8Substrate::add_counters(std::map<std::string, double>& out) const {
  out["weights"] += static_cast<double>(codes_.size());
  out["flipped_bits"] += static_cast<double>(flipped_);
}

const ParamTable<Int8DigitalConfig>& Int8DigitalConfig::table() {
  static const ParamTable<Int8DigitalConfig> t = [] {
    using C = Int8DigitalConfig;
    ParamTable<C> p;
    p.integer("weight_bits", &C::weight_bits, 2, 16, "bits", "width of the stored weight codes")
        .integer("activation_bits", &C::activation_bits, 2, 16, "bits", "width of the input codes")
        .flag("per_channel", &C::per_channel, "one weight scale per output channel (else one per layer)")
        .number("bit_error_rate", &C::bit_error_rate, 0.0, 1.0, "", "probability that a stored weight bit is flipped (per trial)")
        .integer("approx_drop_bits", &C::approx_drop_bits, 0, 15, "bits",
                 "truncated array multipliers: partial-product bits below this column are dropped (0: exact; the twin of rtl/approx_mac_array)");
    return p;
  }();
  return t;
}

namespace {

SubstrateKind int8_digital_kind() {
  SubstrateKind k = typed_kind("int8_digital",
                               "Integer digital MACs: symmetric weight quantization (per tensor or per output channel), dynamic per-vector "
                               "activation quantization, exact integer accumulation, rescaling by s_x*s_w; stored weight bits flip at a bit "
                               "error rate (Jacob et al., CVPR 2018).",
                               Int8DigitalConfig::table(), Int8DigitalConfig{},
                               [](const Int8DigitalConfig& c) { return std::make_unique<Int8Substrate>(c); });
  // Its integer products run on the RTL matrix-vector units (sim/int8_digital_rtl.cpp).
  k.capabilities.rtl_binding = true;
  k.summary_counters = {"flipped_bits"};
  return k;
}

}  // namespace

FAULTLINE_REGISTER_KIND(int8_digital, int8_digital_kind)

}  // namespace faultline::models
