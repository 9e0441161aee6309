// How a resistive weight memory holds a layer (the `rram_memory` kind, arXiv 2401.05820): the
// behavioural model's substrate and the cycle level's memory (sim/) both store weights through
// this one function, so that what the simulated memory holds and returns is exactly what the
// behavioural model computes with.
#pragma once

#include <cstdint>
#include <vector>

#include "models/device.h"
#include "models/substrate.h"

namespace faultline::models {

// The kind's parameters: the resistive device and the width of a stored weight code.
struct RramMemoryConfig {
  DeviceConfig device = [] {
    DeviceConfig d;
    d.levels = 4;  // 2 bits per cell
    return d;
  }();
  int weight_bits = 8;
  static const ParamTable<RramMemoryConfig>& table();
};

// The cycle level's memory and digital MAC array (sim/rram_memory_system.h): the `timing:`
// section. Latencies in cycles of clock_mhz; sources in the declarations (rram_memory.cpp).
struct RramMemoryTiming {
  double clock_mhz = 1000;
  int banks = 8, line_bytes = 64, read_cycles = 10, write_cycles = 50, verify_cycles = 10;
  int mac_rows = 16, mac_cols = 16, mac_latency_cycles = 4, weight_buffers = 2;
  static const ParamTable<RramMemoryTiming>& table();
};

// The `energy:` section, in pJ.
struct RramMemoryEnergy {
  double read_pj_per_byte = 1.0, write_pj = 1.0, verify_pj = 0.1, mac_pj = 0.3;
  static const ParamTable<RramMemoryEnergy>& table();
};

struct RramWeightFormat {
  int weight_bits = 8;       // width of a weight code
  int bits_per_cell = 2;     // log2(levels)
  int cells_per_weight = 4;  // ceil(weight_bits / bits_per_cell)
  static RramWeightFormat from(const DeviceConfig& device, int weight_bits);  // throws on levels not a power of two ≥ 2
};

struct RramStoredWeights {
  float scale = 1;                       // weight = (code − 2^(bits−1)) · scale
  std::vector<std::uint32_t> written;    // offset-binary codes written, one per weight (row-major W)
  std::vector<std::uint32_t> read;       // codes read back at t_inference
  std::vector<std::uint16_t> attempts;   // per weight: the most write attempts any of its cells took
  std::vector<std::uint16_t> attempt_sum;  // per weight: write attempts of all its cells
  CellArrayStats stats;
  std::uint64_t level_errors = 0, weight_errors = 0;

  float weight(std::size_t k, int weight_bits) const {
    return static_cast<float>(static_cast<long>(read[k]) - (1L << (weight_bits - 1))) * scale;
  }
};

// Quantizes `w` (outputs × inputs) to per-layer symmetric codes, splits each code into base-levels
// digits (one per cell, least significant first), programs the cells (device.h: programming noise,
// write failures, write-verify, stuck cells, drift, read noise at t_inference) and reads the
// nearest level back. Randomness keyed by (seed, trial, layer.index, layer.part, cell).
RramStoredWeights store_rram_weights(const DeviceConfig& device, const RramWeightFormat& format, const MatrixRM& w,
                                     const LayerInfo& layer, const ProgramContext& context);

}  // namespace faultline::models
