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

CosimReport run_cosim(const CosimOptions& o) {
  const RtlModuleKind& kind = find_rtl_module(o.rtl);
  const RtlModuleInfo& info = kind.info;
  if (o.vectors < 1 || o.vectors > 1000000000) throw Error("--vectors: must be between 1 and 1e9, got " + std::to_string(o.vectors));
  if (o.weight_sets < 1 || o.weight_sets > 1000000) throw Error("--weight-sets: must be between 1 and 1e6");
  if (!(o.backpressure >= 0 && o.backpressure < 1)) throw Error("--backpressure: must be in [0, 1)");
  if (!(o.clock_mhz > 0 && o.clock_mhz <= 1e5)) throw Error("--clock-mhz: must be in (0, 1e5]");
  std::map<std::string, long long> values;
  for (const auto& r : info.registers) values[r.name] = r.fallback;
  for (const auto& [name, value] : o.registers) {
    if (!values.count(name)) {
      std::string known;
      for (const auto& r : info.registers) known += (known.empty() ? "" : ", ") + r.name;
      throw Error("--set " + name + ": RTL module " + o.rtl + " has no register '" + name + "' (registers: " + (known.empty() ? "none" : known) + ")");
    }
    values[name] = value;
  }
  int drop = 0;
  if (info.twin == "approx") {
    if (!values.count("drop_bits")) throw Error("RTL module " + o.rtl + ": an approx twin needs a register drop_bits");
    drop = static_cast<int>(values["drop_bits"]);
    if (drop < 0 || drop > 15) throw Error("--set drop_bits: must be in [0, 15], got " + std::to_string(drop));
  }

  claim_simulation("cosim");
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  CosimReport report;
  report.rtl = o.rtl;
  report.twin = info.twin;
  const int n = info.outputs, m = info.inputs;
  Bench bench("cosim");
  std::unique_ptr<RtlMatrixVectorUnit> unit = (o.fst ? kind.create_fst : kind.create)("dut", sc_core::sc_time(1e6 / o.clock_mhz, sc_core::SC_PS));
  const models::CounterRng weight_rng(o.seed, 1), vector_rng(o.seed, 2), hold_rng(o.seed, 3);
  const auto random_int8 = [](const models::CounterRng& rng, std::uint64_t index) {
    return static_cast<std::int8_t>(static_cast<int>(rng.below(index, 256)) - 128);
  };
  const auto hold = [&](std::uint64_t cycle) { return o.backpressure > 0 && hold_rng.uniform(cycle) < o.backpressure; };

  bench.body = [&] {
    const auto configure = [&] {
      unit->reset();
      for (const auto& r : info.registers) unit->write_register(r.address, static_cast<std::uint32_t>(values[r.name]));
    };
    configure();
    std::int64_t done = 0;
    for (int s = 0; s < o.weight_sets; ++s) {
      const std::int64_t count = o.vectors / o.weight_sets + (s < o.vectors % o.weight_sets ? 1 : 0);
      if (count == 0) continue;
      std::vector<std::int8_t> w(static_cast<std::size_t>(n * m));
      for (std::size_t k = 0; k < w.size(); ++k) w[k] = random_int8(weight_rng, static_cast<std::uint64_t>(s) * w.size() + k);
      std::vector<RtlMatrixVectorUnit::Transfer> transfers;
      for (int i = 0; i < n; ++i) transfers.push_back({true, std::vector<std::int8_t>(w.begin() + i * m, w.begin() + (i + 1) * m)});
      std::vector<std::int32_t> expected(static_cast<std::size_t>(count * n));
      for (std::int64_t v = 0; v < count; ++v) {
        RtlMatrixVectorUnit::Transfer t{false, std::vector<std::int8_t>(static_cast<std::size_t>(m))};
        for (int j = 0; j < m; ++j) t.lanes[static_cast<std::size_t>(j)] = random_int8(vector_rng, static_cast<std::uint64_t>((done + v) * m + j));
        models::int8_matrix_vector(w.data(), t.lanes.data(), expected.data() + v * n, n, m, drop);
        if (drop > 0) {
          std::vector<std::int32_t> exact(static_cast<std::size_t>(n));
          models::int8_matrix_vector(w.data(), t.lanes.data(), exact.data(), n, m, 0);
          if (!std::equal(exact.begin(), exact.end(), expected.begin() + v * n)) ++report.differs_from_exact;
        }
        transfers.push_back(std::move(t));
      }
      // Generous bound: every transfer may wait for back-pressure; a unit that stops answering
      // ends the set instead of hanging.
      const std::uint64_t bound = static_cast<std::uint64_t>(transfers.size()) * 64 + 1000;
      const auto compare = [&](const std::vector<std::int32_t>& got, std::int64_t results, const char* phase) {
        for (std::int64_t v = 0; v < results; ++v) {
          bool same = true;
          for (int i = 0; i < n; ++i) same = same && got[static_cast<std::size_t>(v * n + i)] == expected[static_cast<std::size_t>(v * n + i)];
          ++report.vectors;
          if (same) continue;
          if (report.mismatches++ == 0) {
            std::ostringstream msg;
            msg << "weight set " << s << " (" << phase << "), vector " << v << ": x = [";
            const auto& x = transfers[static_cast<std::size_t>(n + v)].lanes;
            for (int j = 0; j < m; ++j) msg << (j ? " " : "") << static_cast<int>(x[static_cast<std::size_t>(j)]);
            msg << "]; expected " << join(expected, static_cast<std::size_t>(v * n), static_cast<std::size_t>(n)) << "; got "
                << join(got, static_cast<std::size_t>(v * n), static_cast<std::size_t>(n));
            report.first_mismatch = msg.str();
          }
        }
      };
      const std::uint64_t start = unit->cycles();
      if (o.reset_mid_stream && s == (o.weight_sets > 1 ? 1 : 0) && count >= 2) {
        // Interrupt: stop offering after half the vectors, reset (dropping what is in flight),
        // then the whole set again; results before the reset must be right too.
        std::vector<std::int32_t> partial;
        const std::size_t half = static_cast<std::size_t>(n + count / 2);
        std::vector<RtlMatrixVectorUnit::Transfer> first(transfers.begin(), transfers.begin() + static_cast<std::ptrdiff_t>(half));
        unit->stream(first, static_cast<std::size_t>(count), partial, hold, half + 4);
        compare(partial, static_cast<std::int64_t>(partial.size()) / n, "before the reset");
        configure();
      }
      std::vector<std::int32_t> got;
      unit->stream(transfers, static_cast<std::size_t>(count), got, hold, bound);
      const std::int64_t received = static_cast<std::int64_t>(got.size()) / n;
      compare(got, received, "streaming");
      if (received < count) {
        report.vectors += count - received;
        if (report.mismatches == 0)
          report.first_mismatch = "weight set " + std::to_string(s) + ": only " + std::to_string(received) + " of " + std::to_string(count) +
                                  " results within " + std::to_string(bound) + " cycles";
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
