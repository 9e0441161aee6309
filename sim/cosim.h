// Random-stimulus co-simulation of an RTL matrix-vector unit against its behavioural twin
// (models/mvm_int8.h): `faultline cosim --rtl NAME`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace faultline::sim {

struct CosimOptions {
  std::string rtl;                  // module name (rtl_modules())
  std::int64_t vectors = 1000;      // input vectors in total, spread over the weight sets
  int weight_sets = 4;              // weight matrices loaded one after another
  std::uint64_t seed = 1;
  double backpressure = 0.25;       // probability that out_ready is low in a cycle
  bool reset_mid_stream = true;     // interrupt one weight set half-way with a reset, then redo it
  std::map<std::string, long long> registers;  // configuration register values (default: reset values)
  double clock_mhz = 1000;
  std::string waveform;             // Verilator's waveform of the RTL ("" = none)
  bool fst = false;                 // as FST (else VCD)
};

struct CosimReport {
  std::string rtl, twin;
  std::int64_t vectors = 0;         // results compared
  std::int64_t mismatches = 0;      // results (vectors) with at least one wrong lane
  std::string first_mismatch;       // in full: set, vector, input, expected and actual lanes
  std::int64_t differs_from_exact = 0;  // results where the twin itself is not the exact product (approx twins)
  std::uint64_t cycles = 0;         // clock cycles simulated (resets and configuration included)
  std::uint64_t stream_cycles = 0;  // cycles spent streaming weights and vectors
  double seconds = 0;               // wall time of the simulation
  double vectors_per_second() const { return seconds > 0 ? static_cast<double>(vectors) / seconds : 0; }
};

// Elaborates the module (one SystemC simulation per process), runs the stimulus, compares every
// result with the twin (none: results are only counted). Throws faultline::Error for an unknown
// module or register.
CosimReport run_cosim(const CosimOptions& options);

}  // namespace faultline::sim
