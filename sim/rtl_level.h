// The RTL level: layers whose unit names an RTL module (`impl: rtl:NAME`) compute their integer
// products on the Verilated RTL, tile by tile (N outputs × M inputs per tile, partial sums added
// in int32), while quantization and rescaling stay the behavioural model's (int8_digital). With
// an exact RTL the results are bit-identical to the functional level; with an approximate one
// they equal its behavioural twin.
//
// The RTL runs in-line: every multiply drives the SystemC simulation on the calling thread, so
// the graph must be evaluated on one thread (the thread that created the simulation).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/substrate.h"

namespace faultline::sim {

struct RtlUnitSpec {
  std::string name;         // "<hwcfg name>.<unit name>"
  std::string rtl;          // registered RTL module
  double clock_mhz = 1000;  // for time_ns
};

class RtlSimulation {
 public:
  // Elaborates one instance of each unit's RTL module (one SystemC simulation per process; a
  // second simulation of any level in the same process throws). `waveform` (optional) records
  // every RTL signal, as FST when `fst`, else VCD; with several units one file each, the unit's
  // name inserted before the extension.
  explicit RtlSimulation(std::vector<RtlUnitSpec> units, const std::string& waveform = "", bool fst = false);
  ~RtlSimulation();
  RtlSimulation(const RtlSimulation&) = delete;
  RtlSimulation& operator=(const RtlSimulation&) = delete;

  // `functional` must be an int8_digital substrate with weight and activation codes of ≤ 8 bits.
  // Counters added: cycles, time_ns, rtl_transfers, macs, peak_macs (per read), rtl_weight_loads.
  std::unique_ptr<models::Substrate> wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::sim
