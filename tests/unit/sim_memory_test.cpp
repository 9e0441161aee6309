// The RRAM memory TLM-2.0 target on its own: data, bank timing, conflicts, write-verify,
// blocking and non-blocking transport, error responses.
//
// SystemC elaborates once per process: every TEST here builds its own modules and runs as its
// own process (CTest runs each discovered test separately; do not run this binary unfiltered).
#include <gtest/gtest.h>

#include <numeric>

#include "sim/rram_memory_target.h"

using namespace faultline::sim;
using sc_core::sc_time;
using sc_core::SC_NS;

namespace {

MemoryTiming timing() {
  MemoryTiming t;
  t.period = sc_time(1, SC_NS);
  t.banks = 4;
  t.line_bytes = 16;
  t.read_cycles = 10;
  t.write_cycles = 50;
  t.verify_cycles = 10;
  t.cells_per_byte = 4;
  return t;
}

// An initiator whose thread runs a test body (blocking calls) and records what it saw.
struct Initiator : sc_core::sc_module {
  SC_HAS_PROCESS(Initiator);
  tlm_utils::simple_initiator_socket<Initiator> socket;
  std::function<void(Initiator&)> body;
  sc_core::sc_event response;
  sc_time response_time;
  tlm::tlm_phase response_phase;

  explicit Initiator(const sc_core::sc_module_name& n) : sc_module(n), socket("socket") {
    socket.register_nb_transport_bw(this, &Initiator::nb_transport_bw);
    SC_THREAD(run);
  }
  void run() { body(*this); }
  tlm::tlm_sync_enum nb_transport_bw(tlm::tlm_generic_payload&, tlm::tlm_phase& phase, sc_time&) {
    response_time = sc_core::sc_time_stamp();
    response_phase = phase;
    response.notify(sc_core::SC_ZERO_TIME);
    return tlm::TLM_COMPLETED;
  }

  // A blocking transfer at the current time; returns its duration.
  sc_time transfer(tlm::tlm_command command, std::uint64_t address, std::vector<std::uint8_t>& data,
                   WriteVerifyExtension* extension = nullptr) {
    tlm::tlm_generic_payload p;
    p.set_command(command);
    p.set_address(address);
    p.set_data_ptr(data.data());
    p.set_data_length(static_cast<unsigned>(data.size()));
    p.set_streaming_width(static_cast<unsigned>(data.size()));
    if (extension) p.set_extension(extension);
    sc_time delay = sc_core::SC_ZERO_TIME;
    const sc_time start = sc_core::sc_time_stamp();
    socket->b_transport(p, delay);
    if (extension) p.clear_extension(extension);
    EXPECT_EQ(p.get_response_status(), tlm::TLM_OK_RESPONSE);
    wait(delay);
    return sc_core::sc_time_stamp() - start;
  }
};

TEST(RramMemoryTarget, DataAndBankTiming) {
  RramMemoryTarget memory("memory", timing(), MemoryEnergy{1.0, 2.0, 0.5});
  Initiator cpu("cpu");
  cpu.socket.bind(memory.socket);
  bool done = false;
  cpu.body = [&](Initiator& i) {
    std::vector<std::uint8_t> written(64);
    std::iota(written.begin(), written.end(), 7);
    // 4 lines in 4 banks: written in parallel; 2 write-verify rounds of (50 + 10) cycles each.
    WriteVerifyExtension verify;
    verify.rounds = 2;
    verify.attempts = 300;
    EXPECT_EQ(i.transfer(tlm::TLM_WRITE_COMMAND, 0, written, &verify), sc_time(120, SC_NS));
    std::vector<std::uint8_t> read(64);
    EXPECT_EQ(i.transfer(tlm::TLM_READ_COMMAND, 0, read), sc_time(10, SC_NS));
    EXPECT_EQ(read, written);
    // 8 lines over 4 banks: two rounds, 4 bank conflicts.
    std::vector<std::uint8_t> wide(128);
    EXPECT_EQ(i.transfer(tlm::TLM_READ_COMMAND, 0, wide), sc_time(20, SC_NS));
    EXPECT_TRUE(std::equal(written.begin(), written.end(), wide.begin()));
    EXPECT_TRUE(std::all_of(wide.begin() + 64, wide.end(), [](std::uint8_t b) { return b == 0; }));  // never written
    // Two requests issued at the same time to the same bank (lines 0 and 4): the second queues.
    std::vector<std::uint8_t> a(16), b(16);
    tlm::tlm_generic_payload pa, pb;
    for (auto* p : {&pa, &pb}) {
      p->set_command(tlm::TLM_READ_COMMAND);
      p->set_data_length(16);
      p->set_streaming_width(16);
    }
    pa.set_address(0);
    pa.set_data_ptr(a.data());
    pb.set_address(64);
    pb.set_data_ptr(b.data());
    sc_time da = sc_core::SC_ZERO_TIME, db = sc_core::SC_ZERO_TIME;
    i.socket->b_transport(pa, da);
    i.socket->b_transport(pb, db);
    EXPECT_EQ(da, sc_time(10, SC_NS));
    EXPECT_EQ(db, sc_time(20, SC_NS));
    // A different bank (line 1) at the same time does not wait.
    tlm::tlm_generic_payload pc;
    std::vector<std::uint8_t> c(16);
    pc.set_command(tlm::TLM_READ_COMMAND);
    pc.set_address(16);
    pc.set_data_ptr(c.data());
    pc.set_data_length(16);
    pc.set_streaming_width(16);
    sc_time dc = sc_core::SC_ZERO_TIME;
    i.socket->b_transport(pc, dc);
    EXPECT_EQ(dc, sc_time(10, SC_NS));
    wait(db);
    // Byte enables are not supported: an error response, not a silent partial transfer.
    std::uint8_t enable[4] = {0xff, 0, 0xff, 0};
    tlm::tlm_generic_payload pe;
    pe.set_command(tlm::TLM_WRITE_COMMAND);
    pe.set_address(0);
    pe.set_data_ptr(a.data());
    pe.set_data_length(4);
    pe.set_streaming_width(4);
    pe.set_byte_enable_ptr(enable);
    pe.set_byte_enable_length(4);
    sc_time de = sc_core::SC_ZERO_TIME;
    i.socket->b_transport(pe, de);
    EXPECT_EQ(pe.get_response_status(), tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    done = true;
  };
  sc_core::sc_start();
  ASSERT_TRUE(done);
  const Counters c = memory.totals();
  EXPECT_EQ(c.at("mem_line_writes"), 4);
  EXPECT_EQ(c.at("mem_line_reads"), 4 + 8 + 3);
  EXPECT_EQ(c.at("mem_bank_conflicts"), 4 + 1);
  EXPECT_EQ(c.at("mem_write_rounds"), 8);
  EXPECT_DOUBLE_EQ(c.at("energy_mem_write_pj"), 300 * 2.0);
  EXPECT_DOUBLE_EQ(c.at("energy_mem_verify_pj"), 300 * 0.5);
  EXPECT_DOUBLE_EQ(c.at("energy_mem_read_pj"), (64 + 128 + 48) * 1.0);
  // Bank 0: the write (120), the 64-byte read (10), two lines of the wide read (20), lines 0 and 4
  // of the simultaneous pair (20); bank 1: write, read, wide read, the line-1 read; bank 2: the first three.
  EXPECT_EQ(memory.bank_busy_cycles(0), 120 + 10 + 20 + 20);
  EXPECT_EQ(memory.bank_busy_cycles(1), 120 + 10 + 20 + 10);
  EXPECT_EQ(memory.bank_busy_cycles(2), 120 + 10 + 20);
}

TEST(RramMemoryTarget, NonBlockingTwoPhase) {
  RramMemoryTarget memory("memory", timing(), MemoryEnergy{});
  Initiator cpu("cpu");
  cpu.socket.bind(memory.socket);
  bool done = false;
  cpu.body = [&](Initiator& i) {
    wait(5, SC_NS);
    std::vector<std::uint8_t> data(40);  // lines 0..2: banks 0, 1, 2 in parallel
    tlm::tlm_generic_payload p;
    p.set_command(tlm::TLM_READ_COMMAND);
    p.set_address(8);  // bytes 8..47 span lines 0, 1, 2
    p.set_data_ptr(data.data());
    p.set_data_length(40);
    p.set_streaming_width(40);
    tlm::tlm_phase phase = tlm::BEGIN_REQ;
    sc_time delay(3, SC_NS);  // arrives at 8 ns
    EXPECT_EQ(i.socket->nb_transport_fw(p, phase, delay), tlm::TLM_UPDATED);
    EXPECT_EQ(phase, tlm::END_REQ);
    wait(i.response);
    EXPECT_EQ(i.response_phase, tlm::BEGIN_RESP);
    EXPECT_EQ(i.response_time, sc_time(18, SC_NS));
    EXPECT_EQ(p.get_response_status(), tlm::TLM_OK_RESPONSE);
    done = true;
  };
  sc_core::sc_start();
  ASSERT_TRUE(done);
  EXPECT_EQ(memory.totals().at("mem_line_reads"), 3);
}

}  // namespace
