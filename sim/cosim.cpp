#include "sim/cosim.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "models/error.h"
#include "models/files.h"
#include "models/mvm_int8.h"
#include "models/philox.h"
#include "sim/cycle_level.h"
#include "sim/rtl_unit.h"

namespace faultline::sim {
namespace {

// A test bench: one thread that runs the stimulus against the unit.
class Bench : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Bench);
  explicit Bench(const sc_core::sc_module_name& name) : sc_module(name) { SC_THREAD(run); }
  std::function<void()> body;

 private:
  void run() {
    if (body) body();
  }
};

std::string join(const std::vector<std::int32_t>& v, std::size_t from, std::size_t n) {
  std::ostringstream out;
  out << "[";
  for (std::size_t k = 0; k < n; ++k) out << (k ? " " : "") << v[from + k];
  out << "]";
  return out.str();
}

}  // namespace

Stimulus parse_stimulus(const std::string& name) {
  for (Stimulus s : {Stimulus::Uniform, Stimulus::Sparse, Stimulus::Zeros, Stimulus::Extremes, Stimulus::Mixed})
    if (stimulus_name(s) == name) return s;
  throw Error("--stimulus: must be uniform, sparse, zeros, extremes, mixed or an .npy file, got '" + name + "'");
}
Backpressure parse_backpressure(const std::string& name) {
  for (Backpressure b : {Backpressure::Random, Backpressure::Bursts, Backpressure::Alternate, Backpressure::None, Backpressure::Mixed})
    if (backpressure_name(b) == name) return b;
  throw Error("--backpressure-pattern: must be random, bursts, alternate, none or mixed, got '" + name + "'");
}
std::string stimulus_name(Stimulus s) {
  switch (s) {
    case Stimulus::Uniform: return "uniform";
    case Stimulus::Sparse: return "sparse";
    case Stimulus::Zeros: return "zeros";
    case Stimulus::Extremes: return "extremes";
    case Stimulus::Mixed: return "mixed";
    case Stimulus::File: return "file";
  }
  return "?";
}
std::string backpressure_name(Backpressure b) {
  switch (b) {
    case Backpressure::Random: return "random";
    case Backpressure::Bursts: return "bursts";
    case Backpressure::Alternate: return "alternate";
    case Backpressure::None: return "none";
    case Backpressure::Mixed: return "mixed";
  }
  return "?";
}

CosimReport run_cosim(const CosimOptions& o) {
  const RtlModuleKind& kind = find_rtl_module(o.rtl);
  const RtlModuleInfo& info = kind.info;
  if (o.vectors < 1 || o.vectors > 1000000000) throw Error("--vectors: must be between 1 and 1e9, got " + std::to_string(o.vectors));
  if (o.weight_sets < 1 || o.weight_sets > 1000000) throw Error("--weight-sets: must be between 1 and 1e6");
  if (!(o.backpressure >= 0 && o.backpressure < 1)) throw Error("--backpressure: must be in [0, 1)");
  if (!(o.density >= 0 && o.density <= 1)) throw Error("--density: must be in [0, 1]");
  if (!(o.clock_mhz > 0 && o.clock_mhz <= 1e5)) throw Error("--clock-mhz: must be in (0, 1e5]");
  if (o.stimulus == Stimulus::File && (o.file_vectors.empty() || o.file_vectors.size() % static_cast<std::size_t>(info.inputs) != 0))
    throw Error("--stimulus: the file's vectors must have " + std::to_string(info.inputs) + " lanes each (RTL module " + o.rtl + ")");
  const std::vector<rtl::RegisterValue> registers = rtl_register_values(info, o.registers, "--set");

  claim_simulation("cosim");
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  CosimReport report;
  report.rtl = o.rtl;
  report.twin = info.twin;
  const int n = info.outputs, m = info.inputs;
  Bench bench("cosim");
  if (!o.waveform.empty() && o.engine == RtlEngine::Direct)
    throw Error("--engine direct records no waveform: use --engine systemc with --vcd or --fst");
  std::unique_ptr<RtlMatrixVectorUnit> unit = kind.factory(o.engine, o.fst)("dut", sc_core::sc_time(1e6 / o.clock_mhz, sc_core::SC_PS));
  const models::CounterRng weight_rng(o.seed, 1), vector_rng(o.seed, 2), hold_rng(o.seed, 3);
  // One lane of a weight or vector under a stimulus kind: lane `index` of a stream uses its 32-bit
  // word `index` (word i % 4 of Philox block i / 4, the block computed once for its four lanes).
  static constexpr std::int8_t kExtremes[] = {-128, 127, -128, 127, -1, 0, 1, -127};
  struct Words {
    const models::CounterRng& rng;
    std::uint64_t block_index = ~std::uint64_t{0};
    models::PhiloxCounter block{};
    std::uint32_t operator()(std::uint64_t i) {
      if ((i >> 2) != block_index) {
        block_index = i >> 2;
        block = rng.block(block_index);
      }
      return block[i & 3];
    }
  };
  Words weight_words{weight_rng}, vector_words{vector_rng};
  const auto lane = [&](Stimulus draw, Words& words, std::uint64_t index, std::uint64_t vector, int j) -> std::int8_t {
    const std::uint32_t r = words(index);
    const auto value = static_cast<std::int8_t>(r & 0xFF);
    switch (draw) {
      case Stimulus::Sparse:  // nonzero with probability `density` (16-bit resolution)
        if (static_cast<double>(r >> 16) >= o.density * 65536.0) return 0;
        return value == 0 ? 1 : value;
      case Stimulus::Zeros:
        // In turn: an all-zero vector, a random one, one whose groups of four lanes are zero at
        // random (zero-skipping units take other paths for each); the group's first lane decides.
        if (vector % 3 == 0) return 0;
        if (vector % 3 == 2 && (words(index - static_cast<std::uint64_t>(j % 4)) >> 31) == 0) return 0;
        return value;
      case Stimulus::Extremes:
        return kExtremes[(r >> 8) & 7];
      default:
        return value;
    }
  };
  std::uint64_t held = 0;
  const auto hold_for = [&](Backpressure pattern) -> std::function<bool(std::uint64_t)> {
    switch (pattern) {
      case Backpressure::Random:
        // Cycle c is held when word c of the stream, as a 24-bit fraction, is below the probability.
        return [&o, words = Words{hold_rng}](std::uint64_t c) mutable {
          return o.backpressure > 0 && static_cast<double>(words(c) >> 8) < o.backpressure * 16777216.0;
        };
      case Backpressure::Bursts: return [&](std::uint64_t) { return held++ % (2 * kBurstCycles) < kBurstCycles; };
      case Backpressure::Alternate: return [](std::uint64_t c) { return c % 2 == 1; };
      default: return {};
    }
  };

  // Registers: --set fixes a value; the others keep their reset values in the first weight set and
  // take random values within their width in the others, so that register decoding is exercised.
  std::vector<rtl::RegisterValue> current = registers;
  const models::CounterRng register_rng(o.seed, 4);
  bench.body = [&] {
    const auto configure = [&] {
      unit->reset();
      for (std::size_t r = 0; r < info.registers.size(); ++r)
        unit->write_register(info.registers[r].address, static_cast<std::uint32_t>(current[r].value));
    };
    configure();
    std::int64_t done = 0;
    for (int s = 0; s < o.weight_sets; ++s) {
      const std::int64_t count = o.vectors / o.weight_sets + (s < o.vectors % o.weight_sets ? 1 : 0);
      if (count == 0) continue;
      static constexpr Stimulus kCycle[] = {Stimulus::Uniform, Stimulus::Sparse, Stimulus::Zeros, Stimulus::Extremes};
      static constexpr Backpressure kPatterns[] = {Backpressure::Random, Backpressure::Bursts, Backpressure::Alternate};
      const Stimulus stimulus = o.stimulus == Stimulus::Mixed ? kCycle[s % 4] : o.stimulus;
      const Backpressure pattern = o.pattern == Backpressure::Mixed ? kPatterns[(s / 4) % 3] : o.pattern;
      std::string label = stimulus_name(stimulus) + " stimulus, " + backpressure_name(pattern) + " back-pressure";
      if (s > 0 && !info.registers.empty()) {
        for (std::size_t r = 0; r < info.registers.size(); ++r)
          if (!o.registers.count(info.registers[r].name))
          {
            const std::uint64_t index = (static_cast<std::uint64_t>(s) * 64 + r) * 2;
            const std::uint64_t bits = (std::uint64_t{register_rng.below(index, 65536)} << 16) | register_rng.below(index + 1, 65536);
            current[r].value = static_cast<long long>(bits & ((std::uint64_t{1} << info.registers[r].width) - 1));
          }
        configure();
      }
      for (const auto& r : current) label += ", " + r.name + " = " + std::to_string(r.value);
      std::vector<std::int8_t> w(static_cast<std::size_t>(n * m));
      // Weights follow the stimulus too (extreme or sparse matrices), except for all-zero rows.
      const Stimulus weight_kind = stimulus == Stimulus::Zeros || stimulus == Stimulus::File ? Stimulus::Uniform : stimulus;
      for (std::size_t k = 0; k < w.size(); ++k)
        w[k] = lane(weight_kind, weight_words, static_cast<std::uint64_t>(s) * w.size() + k, 0, static_cast<int>(k % static_cast<std::size_t>(m)));
      RtlMatrixVectorUnit::TransferList transfers(m);
      transfers.reserve(static_cast<std::size_t>(n + count));
      for (int i = 0; i < n; ++i) std::copy_n(w.begin() + i * m, m, transfers.add(true));
      std::vector<std::int32_t> expected(static_cast<std::size_t>(count * n));
      const rtl::TwinUnit twin{n, m, w.data(), &current};
      std::vector<std::int32_t> exact(static_cast<std::size_t>(n));
      for (std::int64_t v = 0; v < count; ++v) {
        std::int8_t* x = transfers.add(false);
        const std::uint64_t vector = static_cast<std::uint64_t>(done + v);
        for (int j = 0; j < m; ++j) {
          const std::uint64_t index = vector * static_cast<std::uint64_t>(m) + static_cast<std::uint64_t>(j);
          x[j] = stimulus == Stimulus::File ? o.file_vectors[index % o.file_vectors.size()] : lane(stimulus, vector_words, index, vector, j);
        }
        if (info.twin_function != nullptr) {
          try {
            info.twin_function(twin, x, expected.data() + v * n);
          } catch (const std::exception& e) {
            throw Error("RTL module " + o.rtl + "'s twin failed: " + e.what());
          }
          models::int8_matrix_vector(w.data(), x, exact.data(), n, m, 0);
          if (!std::equal(exact.begin(), exact.end(), expected.begin() + v * n)) ++report.differs_from_exact;
        }
      }
      const auto compare = [&](const std::vector<std::int32_t>& got, std::int64_t results, const char* phase) {
        for (std::int64_t v = 0; v < results; ++v) {
          ++report.vectors;
          if (info.twin_function == nullptr) continue;
          bool same = true;
          for (int i = 0; i < n; ++i) same = same && got[static_cast<std::size_t>(v * n + i)] == expected[static_cast<std::size_t>(v * n + i)];
          if (same) continue;
          if (report.mismatches++ == 0) {
            std::ostringstream msg;
            msg << "weight set " << s << " (" << label << ", " << phase << "), vector " << v << ": x = [";
            const std::int8_t* x = transfers.lanes(static_cast<std::size_t>(n + v));
            for (int j = 0; j < m; ++j) msg << (j ? " " : "") << static_cast<int>(x[static_cast<std::size_t>(j)]);
            msg << "]; expected " << join(expected, static_cast<std::size_t>(v * n), static_cast<std::size_t>(n)) << "; got "
                << join(got, static_cast<std::size_t>(v * n), static_cast<std::size_t>(n));
            report.first_mismatch = msg.str();
          }
        }
      };
      const auto hold = hold_for(pattern);
      const std::uint64_t start = unit->cycles();
      if (o.reset_mid_stream && s == (o.weight_sets > 1 ? 1 : 0) && count >= 2) {
        // Interrupt: stop offering after half the vectors, reset (dropping what is in flight),
        // then the whole set again; results before the reset must be right too.
        std::vector<std::int32_t> partial;
        const std::size_t half = static_cast<std::size_t>(n + count / 2);
        unit->stream(transfers.prefix(half), static_cast<std::size_t>(count), partial, hold, half + 4);
        compare(partial, static_cast<std::int64_t>(partial.size()) / n, "before the reset");
        configure();
      }
      std::vector<std::int32_t> got;
      // A unit that stops answering ends the set after its declared worst case per transfer
      // (cycles held by back-pressure do not count).
      const std::uint64_t bound = unit->open_cycle_bound(transfers.size());
      unit->stream(transfers, static_cast<std::size_t>(count), got, hold, bound);
      const std::int64_t received = static_cast<std::int64_t>(got.size()) / n;
      compare(got, received, "streaming");
      if (received < count) {
        report.vectors += count - received;
        report.missing += count - received;
        if (report.mismatches == 0)
          report.first_mismatch = "weight set " + std::to_string(s) + " (" + label + "): only " + std::to_string(received) + " of " +
                                  std::to_string(count) + " results within " + std::to_string(bound) +
                                  " cycles with out_ready high (module.txt max_cycles_per_vector = " + std::to_string(info.max_cycles_per_vector) + ")";
        report.mismatches += count - received;
      }
      report.stream_cycles += unit->cycles() - start;
      done += count;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (!o.waveform.empty()) {
      sc_core::sc_start(sc_core::SC_ZERO_TIME);  // elaborate, then attach Verilator's tracing
      check_output_file(o.waveform, "waveform");
      try {
        unit->open_rtl_trace(o.waveform);
      } catch (const std::runtime_error& e) {
        throw Error(e.what());
      }
    }
    sc_core::sc_start();
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC simulation failed: ") + e.what());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.cycles = unit->cycles();
  unit.reset();  // closes the waveform
  // A full disk leaves a cut waveform without any error from the writer.
  if (!o.waveform.empty()) check_written_file(o.waveform, !o.fst);
  return report;
}

}  // namespace faultline::sim
