// Random-stimulus co-simulation of an RTL matrix-vector unit against its behavioural twin
// (models/mvm_int8.h): `faultline cosim --rtl NAME`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sim/rtl_unit.h"

namespace faultline::sim {

// What the input vectors (and weights) of a weight set look like. Mixed cycles through the four
// kinds of stimulus, one per weight set.
enum class Stimulus { Uniform, Sparse, Zeros, Extremes, Mixed, File };
// How out_ready is held low: Random (each cycle with probability `backpressure`), Bursts (runs
// of kBurstCycles cycles held low, long enough to fill any output FIFO, then as many free),
// Alternate (every other cycle), None; Mixed cycles through Random, Bursts and Alternate.
enum class Backpressure { Random, Bursts, Alternate, None, Mixed };
constexpr std::uint64_t kBurstCycles = 300;

Stimulus parse_stimulus(const std::string& name);        // throws faultline::Error naming the choices
Backpressure parse_backpressure(const std::string& name);
std::string stimulus_name(Stimulus s);
std::string backpressure_name(Backpressure b);

struct CosimOptions {
  std::string rtl;                  // module name (rtl_modules())
  std::int64_t vectors = 3000;      // input vectors in total, spread over the weight sets
  int weight_sets = 12;             // weight matrices loaded one after another (12: every stimulus x pattern once)
  std::uint64_t seed = 1;
  Stimulus stimulus = Stimulus::Mixed;
  double density = 0.2;             // Sparse: probability that a lane is nonzero
  std::vector<std::int8_t> file_vectors;  // Stimulus::File: vectors of `inputs` lanes each, used in turn
  Backpressure pattern = Backpressure::Mixed;
  double backpressure = 0.3;        // Random: probability that out_ready is low in a cycle
  bool reset_mid_stream = true;     // interrupt one weight set half-way with a reset, then redo it
  std::map<std::string, long long> registers;  // configuration register values (default: reset values)
  double clock_mhz = 1000;
  RtlEngine engine = RtlEngine::Direct;  // direct (fast) or systemc; a waveform needs systemc
  std::string waveform;             // Verilator's waveform of the RTL ("" = none)
  bool fst = false;                 // as FST (else VCD)
};

struct CosimReport {
  std::string rtl, twin;
  std::int64_t vectors = 0;         // results compared
  std::int64_t mismatches = 0;      // results (vectors) with at least one wrong lane
  std::string first_mismatch;       // in full: set, vector, input, expected and actual lanes
  std::int64_t missing = 0;         // vectors whose result never came (within the module's declared latency)
  std::int64_t differs_from_exact = 0;  // results where the twin is not the exact product (a twin that approximates)
  std::uint64_t cycles = 0;         // clock cycles simulated (resets and configuration included)
  std::uint64_t stream_cycles = 0;  // cycles spent streaming weights and vectors
  double seconds = 0;               // wall time of the simulation
  double vectors_per_second() const { return seconds > 0 ? static_cast<double>(vectors) / seconds : 0; }
};

// Elaborates the module (one SystemC simulation per process), runs the stimulus, compares every
// result with the module's twin (a module without one: results are only counted, and a missing
// result is still an error). Throws faultline::Error for an unknown module, register or option.
CosimReport run_cosim(const CosimOptions& options);

}  // namespace faultline::sim
