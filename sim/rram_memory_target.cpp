#include "sim/rram_memory_target.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace faultline::sim {

using sc_core::sc_time;

RramMemoryTarget::RramMemoryTarget(const sc_core::sc_module_name& name, const MemoryTiming& timing, const MemoryEnergy& energy,
                                   CounterSet* counters)
    : sc_module(name), socket("socket"), timing_(timing), energy_(energy),
      bank_free_(static_cast<std::size_t>(timing.banks), sc_core::SC_ZERO_TIME), bank_busy_(static_cast<std::size_t>(timing.banks), 0.0),
      counters_(counters ? counters : &own_counters_), peq_(this, &RramMemoryTarget::respond) {
  for (int b = 0; b < timing.banks; ++b) bank_keys_.push_back("mem_bank" + std::to_string(b) + "_busy_cycles");
  socket.register_b_transport(this, &RramMemoryTarget::b_transport);
  socket.register_nb_transport_fw(this, &RramMemoryTarget::nb_transport_fw);
  socket.register_transport_dbg(this, &RramMemoryTarget::transport_dbg);
}

sc_time RramMemoryTarget::serve(tlm::tlm_generic_payload& payload, const sc_time& arrival) {
  const std::uint64_t address = payload.get_address();
  const std::uint64_t length = payload.get_data_length();
  const bool write = payload.get_command() == tlm::TLM_WRITE_COMMAND;
  if (payload.get_command() == tlm::TLM_IGNORE_COMMAND || length == 0) {
    payload.set_response_status(tlm::TLM_OK_RESPONSE);
    return arrival;
  }
  if (payload.get_byte_enable_ptr() != nullptr || payload.get_streaming_width() < length) {
    payload.set_response_status(payload.get_byte_enable_ptr() ? tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE : tlm::TLM_BURST_ERROR_RESPONSE);
    return arrival;
  }
  if (address + length > (1ull << 40)) {  // 1 TiB: beyond any layer's weights; guards the resize
    payload.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return arrival;
  }
  if (write) {
    if (data_.size() < address + length) data_.resize(address + length, 0);
    std::memcpy(data_.data() + address, payload.get_data_ptr(), length);
  } else {
    const std::uint64_t have = data_.size() > address ? std::min<std::uint64_t>(length, data_.size() - address) : 0;
    if (have) std::memcpy(payload.get_data_ptr(), data_.data() + address, have);
    std::memset(payload.get_data_ptr() + have, 0, length - have);  // never-written bytes read as 0
  }

  const WriteVerifyExtension* verify = nullptr;
  payload.get_extension(verify);
  const std::uint64_t line_bytes = static_cast<std::uint64_t>(timing_.line_bytes);
  const std::uint64_t first = address / line_bytes, last = (address + length - 1) / line_bytes;
  if (write && verify && !verify->line_rounds.empty() && verify->line_rounds.size() != last - first + 1) {
    payload.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
    return arrival;
  }
  sc_time done = arrival;
  double conflicts = 0, rounds_total = 0;
  std::vector<double> busy(bank_busy_.size(), 0.0);
  for (std::uint64_t line = first; line <= last; ++line) {
    const int rounds = !write ? 0 : verify ? std::max(1, verify->line_rounds.empty() ? verify->rounds : verify->line_rounds[line - first]) : 1;
    rounds_total += rounds;
    const double line_cycles = write ? rounds * (timing_.write_cycles + timing_.verify_cycles) : timing_.read_cycles;
    const sc_time line_time = timing_.period * line_cycles;
    const std::size_t bank = static_cast<std::size_t>(line % static_cast<std::uint64_t>(timing_.banks));
    sc_time start = arrival;
    if (bank_free_[bank] > start) {
      start = bank_free_[bank];
      ++conflicts;
    }
    bank_free_[bank] = start + line_time;
    busy[bank] += line_cycles;
    done = std::max(done, bank_free_[bank]);
  }
  const double lines = static_cast<double>(last - first + 1);
  for (std::size_t b = 0; b < busy.size(); ++b)
    if (busy[b] > 0) {
      bank_busy_[b] += busy[b];
      counters_->add(bank_keys_[b], busy[b]);
    }
  counters_->add("mem_bank_conflicts", conflicts);
  if (write) {
    counters_->add("mem_line_writes", lines);
    counters_->add("mem_bytes_written", static_cast<double>(length));
    counters_->add("mem_write_rounds", rounds_total);
    // Without a device report every cell of the written bytes takes one attempt.
    const double attempts = verify ? verify->attempts : static_cast<double>(length) * timing_.cells_per_byte;
    const double write_energy = attempts * energy_.write_pj, verify_energy = timing_.verify_cycles > 0 ? attempts * energy_.verify_pj : 0.0;
    counters_->add("energy_mem_write_pj", write_energy);
    counters_->add("energy_mem_verify_pj", verify_energy);
    counters_->add("energy_pj", write_energy + verify_energy);
  } else {
    const double read_energy = static_cast<double>(length) * energy_.read_pj_per_byte;
    counters_->add("mem_line_reads", lines);
    counters_->add("mem_bytes_read", static_cast<double>(length));
    counters_->add("energy_mem_read_pj", read_energy);
    counters_->add("energy_pj", read_energy);
  }
  payload.set_response_status(tlm::TLM_OK_RESPONSE);
  return done;
}

unsigned RramMemoryTarget::transport_dbg(tlm::tlm_generic_payload& payload) {
  // Debug access: the bytes, no time, no counters.
  const std::uint64_t address = payload.get_address(), length = payload.get_data_length();
  if (address + length > (1ull << 40)) return 0;
  if (payload.get_command() == tlm::TLM_WRITE_COMMAND) {
    if (data_.size() < address + length) data_.resize(address + length, 0);
    std::memcpy(data_.data() + address, payload.get_data_ptr(), length);
  } else if (payload.get_command() == tlm::TLM_READ_COMMAND) {
    const std::uint64_t have = data_.size() > address ? std::min<std::uint64_t>(length, data_.size() - address) : 0;
    if (have) std::memcpy(payload.get_data_ptr(), data_.data() + address, have);
    std::memset(payload.get_data_ptr() + have, 0, length - have);
  }
  return static_cast<unsigned>(length);
}

void RramMemoryTarget::b_transport(tlm::tlm_generic_payload& payload, sc_time& delay) {
  // Loosely timed: served at the initiator's local time, the completion annotated on `delay`.
  const sc_time arrival = sc_core::sc_time_stamp() + delay;
  delay = serve(payload, arrival) - sc_core::sc_time_stamp();
}

tlm::tlm_sync_enum RramMemoryTarget::nb_transport_fw(tlm::tlm_generic_payload& payload, tlm::tlm_phase& phase, sc_time& delay) {
  // Approximately timed, two phases each way: the request is accepted at once (END_REQ), the
  // response (BEGIN_RESP) comes through nb_transport_bw when the last bank is done.
  if (phase == tlm::BEGIN_REQ) {
    const sc_time arrival = sc_core::sc_time_stamp() + delay;
    const sc_time done = serve(payload, arrival);
    peq_.notify(payload, tlm::BEGIN_RESP, done - sc_core::sc_time_stamp());
    phase = tlm::END_REQ;
    return tlm::TLM_UPDATED;
  }
  // END_RESP: nothing left to do.
  return tlm::TLM_COMPLETED;
}

void RramMemoryTarget::respond(tlm::tlm_generic_payload& payload, const tlm::tlm_phase& phase) {
  tlm::tlm_phase p = phase;
  sc_time zero = sc_core::SC_ZERO_TIME;
  socket->nb_transport_bw(payload, p, zero);
}


}  // namespace faultline::sim
