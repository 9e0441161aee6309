// Weights in resistive memory, read back into a digital MAC array (the rram_memory kind). Timing
// follows sim/README.md ("Memory + digital MAC"):
//
//   a layer is cut into weight blocks of mac_rows inputs × mac_cols outputs (output block major),
//   each stored line-aligned: lines_b = ceil(ceil(r_b · c_b · weight_bits / 8) / line_bytes)
//   fetch  F_b = ceil(lines_b / banks) · read_cycles          (lines of a block in distinct banks)
//   compute C_b = V + mac_latency_cycles                      (one input vector per cycle)
//   weight_buffers = 1: T = Σ_b (F_b + C_b)
//   weight_buffers = 2: T = F_0 + Σ_{b<B−1} max(C_b, F_{b+1}) + C_{B−1}   (fetch overlaps compute)
//   programming: block by block; a line's write repeats write + verify until all its cells
//   verify (rounds = the most write attempts of the weights in the line, from the device model)
#pragma once

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "models/rram_memory.h"
#include "sim/rram_memory_target.h"
#include "sim/unit_system.h"

namespace faultline::sim {

class MemoryMacSystem : public UnitSystem {
 public:
  tlm_utils::simple_initiator_socket<MemoryMacSystem> to_memory;
  // For the waveform: a weight block is being fetched / multiplied (overlap = double buffering).
  sc_core::sc_signal<bool, sc_core::SC_MANY_WRITERS> fetching, computing;

  MemoryMacSystem(const sc_core::sc_module_name& name, const UnitSpec& spec);
  MemoryMacSystem(const sc_core::sc_module_name& name, const models::RramMemoryConfig& config, const models::RramMemoryTiming& timing,
                  const models::RramMemoryEnergy& energy);
  void execute(Operation& op) override;
  bool stored_weights(int layer, int part, models::MatrixRM& out) override;
  double peak_macs_per_cycle(const Operation& op) const override;
  void trace(sc_core::sc_trace_file* file) const override;

  const RramMemoryTarget& memory() const { return *memory_; }

  struct Block {
    std::int64_t row0, col0, rows, cols;  // inputs [row0, row0+rows) × outputs [col0, col0+cols)
    std::uint64_t address, bytes;        // bytes padded to whole lines
  };
  // The block layout of a layer of `inputs` × `outputs` weights starting at `base`.
  std::vector<Block> layout(std::int64_t inputs, std::int64_t outputs, std::uint64_t base) const;

 private:
  void program(Operation& op);
  void multiply(Operation& op);
  void transport(tlm::tlm_generic_payload& payload);

  models::DeviceConfig device_;
  models::RramWeightFormat format_;
  int weight_bits_;
  int mac_rows_, mac_cols_, mac_latency_, buffers_;
  double mac_pj_;
  std::unique_ptr<RramMemoryTarget> memory_;
  struct Region {
    std::uint64_t base = 0;
    std::int64_t inputs = 0, outputs = 0;
    float scale = 1;
  };
  std::map<std::pair<int, int>, Region> regions_;  // (layer, block) → where its weights are
  std::uint64_t next_free_ = 0;
  std::vector<std::uint8_t> buffer_;
  // Handshake between the fetch and compute processes of one multiply.
  sc_core::sc_event block_fetched_, buffer_freed_;
  std::int64_t fetched_ = 0, consumed_ = 0;
};

}  // namespace faultline::sim
