// A banked resistive memory as a TLM-2.0 target (blocking and non-blocking transport).
//
// Address space: bytes; line k (bytes [k·line_bytes, (k+1)·line_bytes)) lives in bank k mod banks.
// A request occupies each of its lines' banks for the line latency, starting when both the
// request has arrived and the bank is free: lines in distinct banks proceed in parallel, lines in
// the same bank (one request spanning more lines than banks, or requests that overlap in time)
// queue — a bank conflict, counted. Reads take read_cycles per line; a write takes
// rounds × (write_cycles + verify_cycles) per line, where rounds is the write-verify repeat count
// carried by a WriteVerifyExtension (1 without one). The memory stores and returns the bytes;
// which values the cells really hold is the behavioural model's business (models/rram_memory).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/counter_set.h"
#include "sim/operation.h"
#include "sim/systemc.h"

namespace faultline::sim {

struct MemoryTiming {
  sc_core::sc_time period;
  int banks = 8;
  int line_bytes = 64;
  int read_cycles = 10, write_cycles = 50, verify_cycles = 10;
  double cells_per_byte = 4;  // 8 / bits per cell
};

struct MemoryEnergy {
  double read_pj_per_byte = 1.0, write_pj = 1.0, verify_pj = 0.1;
};

// Attached to a write: how the cells of this write were programmed (from the device model).
struct WriteVerifyExtension : tlm::tlm_extension<WriteVerifyExtension> {
  int rounds = 1;                // write(+verify) pulses per line: the write-verify repeat count
  std::vector<int> line_rounds;  // per line of the write, when the lines differ (overrides rounds)
  double attempts = 0;           // cell write attempts in this write (energy)
  tlm::tlm_extension_base* clone() const override { return new WriteVerifyExtension(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override { *this = static_cast<const WriteVerifyExtension&>(other); }
};

class RramMemoryTarget : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<RramMemoryTarget> socket;

  // Counts go to `counters` (a unit's set) or, when null, to the target's own set.
  RramMemoryTarget(const sc_core::sc_module_name& name, const MemoryTiming& timing, const MemoryEnergy& energy,
                   CounterSet* counters = nullptr);

  const Counters& totals() const { return counters_->totals(); }
  // Busy time of bank b so far, in cycles.
  double bank_busy_cycles(int bank) const { return bank_busy_[static_cast<std::size_t>(bank)]; }
  const MemoryTiming& timing() const { return timing_; }

 private:
  void b_transport(tlm::tlm_generic_payload& payload, sc_core::sc_time& delay);
  unsigned transport_dbg(tlm::tlm_generic_payload& payload);
  tlm::tlm_sync_enum nb_transport_fw(tlm::tlm_generic_payload& payload, tlm::tlm_phase& phase, sc_core::sc_time& delay);
  void respond(tlm::tlm_generic_payload& payload, const tlm::tlm_phase& phase);
  // Serves the request arriving at absolute time `arrival`; returns when it is complete.
  sc_core::sc_time serve(tlm::tlm_generic_payload& payload, const sc_core::sc_time& arrival);

  MemoryTiming timing_;
  MemoryEnergy energy_;
  std::vector<std::uint8_t> data_;
  std::vector<sc_core::sc_time> bank_free_;
  std::vector<double> bank_busy_;
  std::vector<std::string> bank_keys_;
  CounterSet own_counters_;
  CounterSet* counters_;
  tlm_utils::peq_with_cb_and_phase<RramMemoryTarget> peq_;
};

}  // namespace faultline::sim
