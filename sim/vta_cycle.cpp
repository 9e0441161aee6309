#include "sim/vta_cycle.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <map>
#include <tuple>
#include <sstream>

#include "models/error.h"
#include "models/files.h"
#include "models/vta_program.h"
#include "models/vta_substrate.h"
#include "sim/cycle_level.h"
#include "sim/operation.h"
#include "sim/unit_system.h"
#include "sim/systemc.h"

namespace faultline::sim {

using models::vta::Instruction;
using models::vta::MemId;
using models::vta::Opcode;
using models::vta::VtaMachine;


std::string vta_cycle_report_json(const VtaCycleReport& r) {
  std::string json = models::vta::counters_json(r.counters);
  json.pop_back();  // the closing brace
  std::ostringstream out;
  out << json << ", \"cycles\": " << r.cycles << ", \"time_ns\": " << r.time_ns;
  const char* names[3] = {"load", "compute", "store"};
  for (int m = 0; m < 3; ++m)
    out << ", \"" << names[m] << "_busy_cycles\": " << r.busy[static_cast<std::size_t>(m)] << ", \"" << names[m]
        << "_wait_instruction_cycles\": " << r.wait_instruction[static_cast<std::size_t>(m)] << ", \"" << names[m]
        << "_wait_token_cycles\": " << r.wait_token[static_cast<std::size_t>(m)];
  out << ", \"stall_l2c_cycles\": " << r.stall_l2c << ", \"stall_c2l_cycles\": " << r.stall_c2l << ", \"stall_c2s_cycles\": " << r.stall_c2s
      << ", \"stall_s2c_cycles\": " << r.stall_s2c << ", \"fetch_stall_queue_full_cycles\": " << r.fetch_stall_queue_full
      << ", \"dram_read_bytes\": " << r.dram_read_bytes << ", \"dram_write_bytes\": " << r.dram_write_bytes << ", \"dram_read_bursts\": " << r.dram_read_bursts
      << ", \"dram_write_bursts\": " << r.dram_write_bursts << "}";
  return out.str();
}

namespace {

// The DRAM behind the AXI port: reads and writes are separate channels, each moving one beat of
// axi_data_bits per cycle; requests may be outstanding (AXI), so a channel's beats follow each
// other back to back and the latency overlaps with earlier transfers.
struct VtaDram : sc_core::sc_module {
  tlm_utils::simple_target_socket<VtaDram> socket;
  sc_core::sc_time period;
  std::uint64_t bytes_per_beat = 8, latency = 0, size = 0;
  sc_core::sc_time free_at[2];  // read, write
  std::uint64_t bytes[2] = {0, 0}, bursts[2] = {0, 0};

  explicit VtaDram(const sc_core::sc_module_name& name) : sc_core::sc_module(name), socket("socket") {
    socket.register_b_transport(this, &VtaDram::b_transport);
  }
  void b_transport(tlm::tlm_generic_payload& t, sc_core::sc_time& delay) {
    if (t.get_address() + t.get_data_length() > size) {
      t.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
      return;
    }
    const int ch = t.is_write() ? 1 : 0;
    const std::uint64_t beats = (t.get_data_length() + bytes_per_beat - 1) / bytes_per_beat;
    const sc_core::sc_time request = sc_core::sc_time_stamp() + delay;
    const sc_core::sc_time first = ch == 0 ? request + period * static_cast<double>(latency) : request;
    const sc_core::sc_time start = std::max(first, free_at[ch]);
    free_at[ch] = start + period * static_cast<double>(beats);
    const sc_core::sc_time done = free_at[ch] + (ch == 1 ? period * static_cast<double>(latency) : sc_core::SC_ZERO_TIME);
    delay = done - sc_core::sc_time_stamp();
    bytes[ch] += t.get_data_length();
    ++bursts[ch];
    t.set_response_status(tlm::TLM_OK_RESPONSE);
  }
};

enum Token { kL2C = 0, kC2L = 1, kC2S = 2, kS2C = 3 };
enum State { kIdle = 0, kWaitToken = 1, kBusy = 2, kDone = 3 };

}  // namespace

struct VtaCycleSimulation::Impl {
  struct Core;
  std::unique_ptr<VtaDram> dram;
  std::unique_ptr<Core> core;
  sc_core::sc_trace_file* vcd = nullptr;
  std::string vcd_file;
};

// The four modules as processes sharing one AXI initiator (tvm-vta's VME arbitrates the modules'
// memory requests onto one port).
struct VtaCycleSimulation::Impl::Core : sc_core::sc_module {
  tlm_utils::simple_initiator_socket<Core> mem;
  std::unique_ptr<VtaMachine> machine_ptr;  // replaced by configure() between runs
  VtaTiming timing;
  sc_core::sc_time period;
  sc_core::sc_event start, token_pushed, queue_pushed[3], queue_popped[3];
  // Written by several processes (never two in one delta cycle that matters for the trace).
  sc_core::sc_signal<int, sc_core::SC_UNCHECKED_WRITERS> state[3], tokens_signal[4], fill_signal[3];

  // One run's state.
  const std::vector<Instruction>* program = nullptr;
  std::vector<std::uint8_t>* image = nullptr;
  std::vector<int> module_of;
  std::deque<std::size_t> queue[3];
  std::uint64_t tokens[4] = {0, 0, 0, 0};
  bool fetch_done = false, finished = false, abort = false;
  bool done[3] = {false, false, false};
  int fetch_blocked_on = -1;                // module whose full queue holds fetch, or -1
  long long waiting_at[3] = {-1, -1, -1};   // instruction a module waits at for a token
  int waiting_for[3] = {0, 0, 0};           // the token it waits for
  std::string error;
  models::vta::VtaCounters counters;
  VtaCycleReport report;
  sc_core::sc_time began, ended;
  std::uint64_t insn_base = 0;
  bool deadlocked = false;  // processes are left waiting: the simulation cannot run again
  int modules_finished = 0;  // of the current run (fetch aside)
  sc_core::sc_event module_finished;
  std::function<std::uint64_t()> core_cycles;  // the RTL level's GEMM core, when set

  Core(const sc_core::sc_module_name& name, const models::vta::VtaConfig& config, const VtaTiming& t)
      : sc_core::sc_module(name), mem("mem"), machine_ptr(std::make_unique<VtaMachine>(config)), timing(t), period(1000.0 / t.clock_mhz, sc_core::SC_NS) {
    sc_core::sc_spawn([this] { fetch_process(); }, "fetch");
    for (int m = 0; m < 3; ++m) sc_core::sc_spawn([this, m] { module_process(m); }, VtaMachine::module_name(m));
  }

  std::uint64_t cycles(const sc_core::sc_time& t) const { return static_cast<std::uint64_t>(std::llround(t / period)); }

  void begin(const std::vector<Instruction>& p, const VtaMachine::Routing& routing, std::vector<std::uint8_t>& dram) {
    program = &p;
    image = &dram;
    module_of.assign(p.size(), 0);
    for (int m = 0; m < 3; ++m)
      for (std::size_t k : routing.queue[m]) module_of[k] = m;
    for (int m = 0; m < 3; ++m) {
      queue[m].clear();
      done[m] = false;
      waiting_at[m] = -1;
    }
    std::fill(std::begin(tokens), std::end(tokens), 0);
    fetch_done = finished = abort = false;
    modules_finished = 0;
    fetch_blocked_on = -1;
    error.clear();
    counters = {};
    report = {};
    insn_base = (dram.size() + 15) / 16 * 16;  // the instructions follow the data in DRAM
  }

  void stop(const std::string& message) {
    if (error.empty()) error = message;
    abort = true;
    token_pushed.notify(sc_core::SC_ZERO_TIME);
    for (int m = 0; m < 3; ++m) {
      queue_pushed[m].notify(sc_core::SC_ZERO_TIME);
      queue_popped[m].notify(sc_core::SC_ZERO_TIME);
    }
  }

  // Issues one AXI burst `delay_cycles` after now; returns when its data is done, relative to now.
  sc_core::sc_time transfer(bool write, std::uint64_t address, std::uint64_t length, std::uint64_t delay_cycles) {
    static std::uint8_t scratch[1];  // the data moves in the functional machine; the bus only times it
    tlm::tlm_generic_payload t;
    t.set_command(write ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
    t.set_address(address);
    t.set_data_ptr(scratch);
    t.set_data_length(static_cast<unsigned int>(length));
    t.set_streaming_width(static_cast<unsigned int>(length));
    t.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
    sc_core::sc_time delay = period * static_cast<double>(delay_cycles);
    mem->b_transport(t, delay);
    if (t.get_response_status() != tlm::TLM_OK_RESPONSE)
      throw Error("DRAM access at byte " + std::to_string(address) + " of " + std::to_string(length) + " bytes is outside the image");
    return delay;
  }

  // Rows of a LOAD or STORE as AXI bursts: one burst sequence per row (rows are x_stride apart),
  // split at axi_max_burst beats; one request per cycle. Returns when the last one is done.
  sc_core::sc_time dma(const Instruction& insn, bool write) {
    const std::uint64_t entry = machine_ptr->entry_bytes(insn.mem_id);
    const std::uint64_t burst_bytes = static_cast<std::uint64_t>(timing.axi_max_burst) * static_cast<std::uint64_t>(timing.axi_data_bits / 8);
    sc_core::sc_time last = sc_core::SC_ZERO_TIME;
    std::uint64_t request = 0;
    for (std::uint32_t y = 0; y < insn.y_size; ++y) {
      const std::uint64_t row = (static_cast<std::uint64_t>(insn.dram_base) + static_cast<std::uint64_t>(y) * insn.x_stride) * entry;
      const std::uint64_t length = static_cast<std::uint64_t>(insn.x_size) * entry;
      for (std::uint64_t off = 0; off < length; off += burst_bytes)
        last = std::max(last, transfer(write, row + off, std::min(burst_bytes, length - off), request++));
    }
    return last;
  }

  // How long `insn` keeps its module busy, in simulated time (DMA through the TLM target).
  sc_core::sc_time duration(const Instruction& insn) {
    const auto cyc = [this](std::uint64_t n) { return period * static_cast<double>(n); };
    switch (static_cast<Opcode>(insn.opcode)) {
      case Opcode::Load: {
        // Padding is written into the SRAM one entry per cycle beside the data (TensorLoad's pad states).
        const std::uint64_t width = static_cast<std::uint64_t>(insn.x_pad0) + insn.x_size + insn.x_pad1;
        const std::uint64_t pad = (static_cast<std::uint64_t>(insn.y_pad0) + insn.y_pad1) * width +
                                  static_cast<std::uint64_t>(insn.y_size) * (static_cast<std::uint64_t>(insn.x_pad0) + insn.x_pad1);
        return std::max(dma(insn, false), cyc(1)) + cyc(pad);
      }
      case Opcode::Store:
        return std::max(dma(insn, true), cyc(1));
      case Opcode::Gemm:
        return cyc(models::vta::micro_ops(insn) + static_cast<std::uint64_t>(timing.gemm_pipeline));
      case Opcode::Alu: {
        const auto per = static_cast<std::uint64_t>(insn.use_imm ? timing.alu_cycles_immediate : timing.alu_cycles_vector);
        return cyc(models::vta::micro_ops(insn) * per + static_cast<std::uint64_t>(timing.alu_pipeline));
      }
      case Opcode::Finish:
        return cyc(static_cast<std::uint64_t>(timing.finish_cycles));
    }
    return cyc(1);
  }

  void fetch_process() {
    for (;;) {
      sc_core::wait(start);
      // Bursts of whole instructions (16 bytes each), dispatched as they arrive.
      const std::size_t per_burst =
          std::max<std::size_t>(1, static_cast<std::size_t>(timing.axi_max_burst) * static_cast<std::size_t>(timing.axi_data_bits / 8) / 16);
      const std::size_t n = program->size();
      for (std::size_t k0 = 0; k0 < n && !abort; k0 += per_burst) {
        const std::size_t count = std::min(per_burst, n - k0);
        sc_core::wait(transfer(false, insn_base + k0 * 16, count * 16, 0));
        for (std::size_t k = k0; k < k0 + count && !abort; ++k) {
          const int m = module_of[k];
          while (queue[m].size() >= static_cast<std::size_t>(timing.inst_queue_entries) && !abort) {
            fetch_blocked_on = m;
            const sc_core::sc_time t0 = sc_core::sc_time_stamp();
            sc_core::wait(queue_popped[m]);
            report.fetch_stall_queue_full += cycles(sc_core::sc_time_stamp() - t0);
          }
          fetch_blocked_on = -1;
          queue[m].push_back(k);
          fill_signal[m].write(static_cast<int>(queue[m].size()));
          queue_pushed[m].notify(sc_core::SC_ZERO_TIME);
        }
      }
      fetch_done = true;
      for (int m = 0; m < 3; ++m) queue_pushed[m].notify(sc_core::SC_ZERO_TIME);
    }
  }

  void module_process(int m) {
    const auto um = static_cast<std::size_t>(m);
    for (;;) {
      sc_core::wait(start);
      for (;;) {
        if (abort) break;
        if (queue[m].empty()) {
          if (fetch_done) break;
          state[m].write(kIdle);
          const sc_core::sc_time t0 = sc_core::sc_time_stamp();
          sc_core::wait(queue_pushed[m]);
          report.wait_instruction[um] += cycles(sc_core::sc_time_stamp() - t0);
          continue;
        }
        const std::size_t k = queue[m].front();
        const Instruction& insn = (*program)[k];
        // The tokens it pops: from the previous module (compute: load→compute; store:
        // compute→store) and from the next (load: compute→load; compute: store→compute).
        const int prev = m == VtaMachine::kCompute ? kL2C : kC2S;
        const int next = m == VtaMachine::kLoad ? kC2L : kS2C;
        for (;;) {
          const bool need_prev = insn.pop_prev && tokens[prev] == 0, need_next = insn.pop_next && tokens[next] == 0;
          if ((!need_prev && !need_next) || abort) break;
          waiting_at[m] = static_cast<long long>(k);
          waiting_for[m] = need_prev ? prev : next;
          state[m].write(kWaitToken);
          const sc_core::sc_time t0 = sc_core::sc_time_stamp();
          sc_core::wait(token_pushed);
          const std::uint64_t stalled = cycles(sc_core::sc_time_stamp() - t0);
          report.wait_token[um] += stalled;
          (waiting_for[m] == kL2C ? report.stall_l2c : waiting_for[m] == kC2L ? report.stall_c2l
                                                     : waiting_for[m] == kC2S ? report.stall_c2s : report.stall_s2c) += stalled;
        }
        if (abort) break;
        waiting_at[m] = -1;
        queue[m].pop_front();
        fill_signal[m].write(static_cast<int>(queue[m].size()));
        queue_popped[m].notify(sc_core::SC_ZERO_TIME);
        if (m == VtaMachine::kCompute && finished) {
          stop(models::vta::instruction_label(k, insn) + ": a compute instruction after FINISH");
          break;
        }
        if (insn.pop_prev) set_tokens(prev, tokens[prev] - 1);
        if (insn.pop_next) set_tokens(next, tokens[next] - 1);
        // The values change when the instruction starts (see the header); its cycles follow.
        sc_core::sc_time busy;
        try {
          const bool on_core = core_cycles && insn.opcode == static_cast<int>(Opcode::Gemm) && !insn.reset;
          const std::uint64_t core_before = on_core ? core_cycles() : 0;
          machine_ptr->execute(insn, k, *image, counters);
          busy = on_core ? period * static_cast<double>(std::max<std::uint64_t>(1, core_cycles() - core_before)) : duration(insn);
        } catch (const Error& e) {
          stop(e.what());
          break;
        }
        state[m].write(kBusy);
        sc_core::wait(busy);
        report.busy[um] += cycles(busy);
        ended = std::max(ended, sc_core::sc_time_stamp());
        if (insn.opcode == static_cast<int>(Opcode::Finish)) finished = true;
        if (insn.push_prev) set_tokens(m == VtaMachine::kCompute ? kC2L : kS2C, tokens[m == VtaMachine::kCompute ? kC2L : kS2C] + 1);
        if (insn.push_next) set_tokens(m == VtaMachine::kLoad ? kL2C : kC2S, tokens[m == VtaMachine::kLoad ? kL2C : kC2S] + 1);
      }
      done[m] = !abort;
      state[m].write(kDone);
      ++modules_finished;
      module_finished.notify(sc_core::SC_ZERO_TIME);
    }
  }

  void set_tokens(int queue_id, std::uint64_t value) {
    tokens[queue_id] = value;
    tokens_signal[queue_id].write(static_cast<int>(std::min<std::uint64_t>(value, 1u << 30)));
    token_pushed.notify(sc_core::SC_ZERO_TIME);
  }
};

VtaCycleSimulation::VtaCycleSimulation(const models::vta::VtaConfig& config, const VtaTiming& timing, const std::string& vcd)
    : impl_(std::make_unique<Impl>()) {
  config.validate();
  if (timing.axi_data_bits & (timing.axi_data_bits - 1)) throw Error("timing: axi_data_bits must be a power of two, got " + std::to_string(timing.axi_data_bits));
  claim_simulation("the VTA cycle level");
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  try {
    impl_->dram = std::make_unique<VtaDram>("vta_dram");
    impl_->core = std::make_unique<Impl::Core>("vta", config, timing);
    impl_->core->mem.bind(impl_->dram->socket);
    impl_->dram->period = impl_->core->period;
    impl_->dram->bytes_per_beat = static_cast<std::uint64_t>(timing.axi_data_bits / 8);
    impl_->dram->latency = static_cast<std::uint64_t>(timing.dram_latency);
    if (!vcd.empty()) {
      std::string base = vcd;
      if (base.size() > 4 && base.substr(base.size() - 4) == ".vcd") base.resize(base.size() - 4);  // SystemC appends ".vcd"
      impl_->vcd_file = base + ".vcd";
      check_output_file(impl_->vcd_file, "--vcd");
      sc_core::sc_report_handler::set_actions(sc_core::SC_INFO, sc_core::SC_DO_NOTHING);
      impl_->vcd = sc_core::sc_create_vcd_trace_file(base.c_str());
      if (impl_->vcd == nullptr) throw Error(vcd + ": cannot create the waveform file");
      impl_->vcd->set_time_unit(1, sc_core::SC_NS);
      const char* modules[3] = {"load_state", "compute_state", "store_state"};
      const char* fills[3] = {"load_queue", "compute_queue", "store_queue"};
      const char* tokens[4] = {"tokens_l2c", "tokens_c2l", "tokens_c2s", "tokens_s2c"};
      for (int m = 0; m < 3; ++m) {
        sc_core::sc_trace(impl_->vcd, impl_->core->state[m], modules[m]);
        sc_core::sc_trace(impl_->vcd, impl_->core->fill_signal[m], fills[m]);
      }
      for (int q = 0; q < 4; ++q) sc_core::sc_trace(impl_->vcd, impl_->core->tokens_signal[q], tokens[q]);
    }
    sc_core::sc_start(sc_core::SC_ZERO_TIME);  // the processes wait for `start` before the first run
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC elaboration failed: ") + e.what());
  }
}

VtaCycleSimulation::~VtaCycleSimulation() {
  if (impl_->vcd) sc_core::sc_close_vcd_trace_file(impl_->vcd);
}

models::vta::VtaMachine& VtaCycleSimulation::machine() { return *impl_->core->machine_ptr; }

void VtaCycleSimulation::time_gemm_by(std::function<std::uint64_t()> core_cycles) { impl_->core->core_cycles = std::move(core_cycles); }

void VtaCycleSimulation::configure(const models::vta::VtaConfig& config) {
  config.validate();
  impl_->core->machine_ptr = std::make_unique<VtaMachine>(config);
}

std::string VtaCycleSimulation::close_waveform() {
  if (impl_->vcd != nullptr) {
    sc_core::sc_close_vcd_trace_file(impl_->vcd);
    impl_->vcd = nullptr;
    check_written_file(impl_->vcd_file, true);
  }
  return impl_->vcd_file;
}

VtaCycleReport VtaCycleSimulation::run(const std::vector<Instruction>& program, std::vector<std::uint8_t>& dram) {
  Impl::Core& core = *impl_->core;
  if (core.deadlocked) throw Error("the VTA cycle level cannot run after a deadlock in the same process");
  const VtaMachine::Routing routing = VtaMachine::route(program);
  core.begin(program, routing, dram);
  core.counters.dram_flips = core.machine_ptr->flip_dram(dram);  // retention errors before the run, as the functional level
  impl_->dram->size = core.insn_base + 16 * program.size();
  for (int ch = 0; ch < 2; ++ch) {
    impl_->dram->bytes[ch] = impl_->dram->bursts[ch] = 0;
    impl_->dram->free_at[ch] = sc_core::sc_time_stamp();
  }
  core.began = core.ended = sc_core::sc_time_stamp();
  core.start.notify(sc_core::SC_ZERO_TIME);
  try {
    sc_core::sc_start();  // returns when nothing is left to simulate: done, failed or deadlocked
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC simulation failed: ") + e.what());
  }
  if (!core.error.empty()) throw Error(core.error);
  if (!(core.done[0] && core.done[1] && core.done[2])) {
    std::string waiting;
    const char* from[4] = {"load", "compute", "compute", "store"};
    for (int m = 0; m < 3; ++m) {
      if (core.done[m] || core.waiting_at[m] < 0) continue;
      const auto k = static_cast<std::size_t>(core.waiting_at[m]);
      waiting += std::string(waiting.empty() ? "" : "; ") + VtaMachine::module_name(m) + " waits at " +
                 models::vta::instruction_label(k, program[k]) + " for a token from " + from[core.waiting_for[m]];
    }
    if (core.fetch_blocked_on >= 0)
      waiting += std::string(waiting.empty() ? "" : "; ") + "fetch waits for room in the " + VtaMachine::module_name(core.fetch_blocked_on) +
                 " queue (inst_queue_entries " + std::to_string(core.timing.inst_queue_entries) +
                 "), so the instruction that would push the token is never dispatched";
    core.deadlocked = true;
    throw Error("deadlock: " + waiting + (core.fetch_blocked_on >= 0 ? "" : " (no instruction left can push it)"));
  }
  VtaCycleReport report = core.report;
  report.counters = core.counters;
  report.counters.instructions = program.size();
  report.cycles = core.cycles(core.ended - core.began);
  report.time_ns = static_cast<double>(report.cycles) * 1e3 / core.timing.clock_mhz;
  report.dram_read_bytes = impl_->dram->bytes[0];
  report.dram_write_bytes = impl_->dram->bytes[1];
  report.dram_read_bursts = impl_->dram->bursts[0];
  report.dram_write_bursts = impl_->dram->bursts[1];
  return report;
}

// The cycle level of the hardware kind `vta` (models/vta_substrate.h) in a network study: a unit
// system holding its own VTA (the four modules and the DRAM behind them) that runs, for every
// recorded read, the program the functional level ran for it. A read's program depends only on the
// layer's shape and the number of rows (models/vta_lowering.h), and VTA's timing does not depend on
// the values, so the program is lowered once per shape with zero data; the values stay the
// functional level's.
namespace {

class VtaUnitSystem final : public UnitSystem {
 public:
  VtaUnitSystem(const char* name, const models::vta::VtaUnitConfig& unit, const VtaTiming& timing, const std::map<std::string, models::Params>& schedules)
      : UnitSystem(name, timing.clock_mhz), config_(unit.machine()) {
    for (const auto& [layer, knobs] : schedules) schedules_[layer] = models::vta::schedule_from(knobs);
    config_.validate();
    if (timing.axi_data_bits & (timing.axi_data_bits - 1))
      throw Error("timing: axi_data_bits must be a power of two, got " + std::to_string(timing.axi_data_bits));
    // Named after the unit: they are created outside the unit module's hierarchy (its module name
    // is gone by now), and two vta units must not share names (SystemC warning W505).
    dram_ = std::make_unique<VtaDram>((std::string(basename()) + "_dram").c_str());
    core_ = std::make_unique<VtaCycleSimulation::Impl::Core>((std::string(basename()) + "_core").c_str(), config_, timing);
    core_->mem.bind(dram_->socket);
    dram_->period = core_->period;
    dram_->bytes_per_beat = static_cast<std::uint64_t>(timing.axi_data_bits / 8);
    dram_->latency = static_cast<std::uint64_t>(timing.dram_latency);
  }

  void execute(Operation& op) override {
    // VTA keeps no weights between reads (every read loads them from DRAM): programming is free.
    if (op.type == Operation::Type::Program) return;
    Lowered& lowered = lowered_for(op);
    VtaCycleSimulation::Impl::Core& core = *core_;
    core.begin(lowered.layer.program, lowered.routing, lowered.layer.dram);
    dram_->size = core.insn_base + 16 * lowered.layer.program.size();
    for (int ch = 0; ch < 2; ++ch) {
      dram_->bytes[ch] = dram_->bursts[ch] = 0;
      dram_->free_at[ch] = sc_core::sc_time_stamp();
    }
    core.began = core.ended = sc_core::sc_time_stamp();
    core.start.notify(sc_core::SC_ZERO_TIME);
    while (core.modules_finished < 3) wait(core.module_finished);
    if (!core.error.empty()) SC_REPORT_ERROR("faultline/vta", core.error.c_str());
    // The modules' own figures (the functional counters stay with the functional substrate).
    counters.add("energy_pj", 0.0);  // no energy model for VTA (the report shows 0)
    const double positions = static_cast<double>(op.vectors) * static_cast<double>(op.convolution ? op.shape.patches() : 1);
    counters.add("macs", positions * static_cast<double>(op.inputs) * static_cast<double>(op.outputs));
    counters.add("load_busy_cycles", static_cast<double>(core.report.busy[0]));
    counters.add("compute_busy_cycles", static_cast<double>(core.report.busy[1]));
    counters.add("store_busy_cycles", static_cast<double>(core.report.busy[2]));
    counters.add("token_stall_cycles", static_cast<double>(core.report.stall_l2c + core.report.stall_c2l + core.report.stall_c2s + core.report.stall_s2c));
    counters.add("dram_read_bytes", static_cast<double>(dram_->bytes[0]));
    counters.add("dram_write_bytes", static_cast<double>(dram_->bytes[1]));
  }

  double peak_macs_per_cycle(const Operation&) const override { return static_cast<double>(config_.batch()) * config_.block() * config_.block(); }

  void trace(sc_core::sc_trace_file* file) const override {
    UnitSystem::trace(file);
    const char* modules[3] = {"load_state", "compute_state", "store_state"};
    for (int m = 0; m < 3; ++m) sc_core::sc_trace(file, core_->state[m], std::string(name()) + "." + modules[m]);
  }

 private:
  struct Lowered {
    models::vta::LoweredLayer layer;
    VtaMachine::Routing routing;
  };
  Lowered& lowered_for(const Operation& op) {
    const bool feature_map = op.convolution && !(op.shape.height == 1 && op.shape.width == 1 && op.shape.kernel_h == 1 && op.shape.kernel_w == 1);
    const auto key = std::make_tuple(op.layer, op.part, op.vectors, feature_map);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      // As the functional substrate lowers the read (models/vta_substrate.cpp), with zero data.
      models::vta::DenseQuantization zero;
      zero.weight_codes.assign(static_cast<std::size_t>(op.inputs * op.outputs), 0);
      zero.shift = 1;  // a bias entry for every output, as a read with a bias has
      Lowered l;
      const std::string name = "layer " + std::to_string(op.layer);
      const auto sched = schedules_.find(op.layer_name);
      const models::vta::Schedule schedule = sched == schedules_.end() ? models::vta::Schedule{} : sched->second;
      if (feature_map) {
        models::vta::ConvLayer layer = models::vta::conv_layer(op.shape, zero, name);
        layer.bias.assign(static_cast<std::size_t>(op.outputs), 0);
        l.layer = models::vta::lower_conv(layer, static_cast<int>(op.vectors), config_, schedule);
      } else {
        models::vta::ConvLayer layer = models::vta::dense_as_conv(zero, op.outputs, op.inputs, op.vectors, config_, name);
        models::vta::fit_rows_to_schedule(layer, schedule);
        l.layer = models::vta::lower_conv(layer, config_.batch(), config_, schedule);
      }
      l.routing = VtaMachine::route(l.layer.program);
      it = cache_.emplace(key, std::move(l)).first;
    }
    return it->second;
  }

  models::vta::VtaConfig config_;
  std::map<std::string, models::vta::Schedule> schedules_;  // by layer name; others: the default schedule
  std::unique_ptr<VtaDram> dram_;
  std::unique_ptr<VtaCycleSimulation::Impl::Core> core_;
  std::map<std::tuple<int, int, std::int64_t, bool>, Lowered> cache_;
};

std::unique_ptr<UnitSystem> make_vta_system(const char* name, const UnitSpec& spec) {
  return std::make_unique<VtaUnitSystem>(name, models::vta::VtaUnitConfig::table().read(spec.params), VtaTiming::table().read(spec.timing), spec.schedule);
}

}  // namespace

FAULTLINE_REGISTER_CYCLE_MODEL(vta, CycleModel{&make_vta_system, false})

}  // namespace faultline::sim
