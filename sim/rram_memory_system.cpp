#include "sim/rram_memory_system.h"

#include <algorithm>
#include <cmath>
#include <string>


namespace faultline::sim {

using sc_core::sc_time;

namespace {
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

MemoryTiming memory_timing(const models::RramMemoryConfig& config, const models::RramMemoryTiming& t, const sc_time& period) {
  MemoryTiming m;
  m.period = period;
  m.banks = t.banks;
  m.line_bytes = t.line_bytes;
  m.read_cycles = t.read_cycles;
  m.write_cycles = t.write_cycles;
  m.verify_cycles = t.verify_cycles;
  int bits_per_cell = 0;
  while ((1 << bits_per_cell) < config.device.levels) ++bits_per_cell;
  m.cells_per_byte = 8.0 / std::max(1, bits_per_cell);
  return m;
}
}  // namespace

MemoryMacSystem::MemoryMacSystem(const sc_core::sc_module_name& name, const UnitSpec& spec)
    : MemoryMacSystem(name, models::RramMemoryConfig::table().read(spec.params), models::RramMemoryTiming::table().read(spec.timing),
                      models::RramMemoryEnergy::table().read(spec.energy)) {}

MemoryMacSystem::MemoryMacSystem(const sc_core::sc_module_name& name, const models::RramMemoryConfig& config,
                                 const models::RramMemoryTiming& t, const models::RramMemoryEnergy& e)
    : UnitSystem(name, t.clock_mhz), to_memory("to_memory"), fetching("fetching"), computing("computing"), device_(config.device),
      format_(models::RramWeightFormat::from(device_, config.weight_bits)), weight_bits_(format_.weight_bits), mac_rows_(t.mac_rows),
      mac_cols_(t.mac_cols), mac_latency_(t.mac_latency_cycles), buffers_(t.weight_buffers), mac_pj_(e.mac_pj),
      memory_(std::make_unique<RramMemoryTarget>("memory", memory_timing(config, t, period()), MemoryEnergy{e.read_pj_per_byte, e.write_pj, e.verify_pj},
                                                 &counters)) {
  to_memory.bind(memory_->socket);
}

std::vector<MemoryMacSystem::Block> MemoryMacSystem::layout(std::int64_t inputs, std::int64_t outputs, std::uint64_t base) const {
  std::vector<Block> blocks;
  const std::uint64_t line = static_cast<std::uint64_t>(memory_->timing().line_bytes);
  std::uint64_t address = base;
  for (std::int64_t c0 = 0; c0 < outputs; c0 += mac_cols_)
    for (std::int64_t r0 = 0; r0 < inputs; r0 += mac_rows_) {
      Block b{r0, c0, std::min<std::int64_t>(mac_rows_, inputs - r0), std::min<std::int64_t>(mac_cols_, outputs - c0), address, 0};
      const std::uint64_t bytes = static_cast<std::uint64_t>(ceil_div(b.rows * b.cols * weight_bits_, 8));
      b.bytes = (bytes + line - 1) / line * line;
      address += b.bytes;
      blocks.push_back(b);
    }
  return blocks;
}

void MemoryMacSystem::transport(tlm::tlm_generic_payload& payload) {
  sc_time delay = sc_core::SC_ZERO_TIME;
  to_memory->b_transport(payload, delay);
  if (payload.get_response_status() != tlm::TLM_OK_RESPONSE) SC_REPORT_ERROR("faultline/memory", payload.get_response_string().c_str());
  wait(delay);
}

void MemoryMacSystem::program(Operation& op) {
  // What the cells hold comes from the device model — the same function, with the same random
  // keys, as the behavioural model's — so the bytes stored here are exactly the weight codes the
  // behavioural model reads back and computes with.
  const auto key = std::make_pair(op.layer, op.part);
  std::vector<Block> blocks = layout(op.inputs, op.outputs, 0);
  std::uint64_t size = 0;
  for (const auto& b : blocks) size += b.bytes;
  auto it = regions_.find(key);
  if (it == regions_.end()) {
    it = regions_.emplace(key, Region{next_free_, op.inputs, op.outputs, 1.0f}).first;
    next_free_ += size;
  }
  blocks = layout(op.inputs, op.outputs, it->second.base);
  models::LayerInfo info;
  info.index = op.layer;
  info.part = op.part;
  const models::RramStoredWeights stored = models::store_rram_weights(device_, format_, op.weights, info, {op.seed, op.trial});
  it->second.scale = stored.scale;
  const std::uint64_t line = static_cast<std::uint64_t>(memory_->timing().line_bytes);
  for (const auto& b : blocks) {
    // Pack the read-back codes weight_bits each, little-endian, input-major within the block;
    // a line's write-verify rounds are the most attempts of any weight with bits in it.
    buffer_.assign(b.bytes, 0);
    WriteVerifyExtension verify;
    verify.line_rounds.assign(b.bytes / line, 1);
    std::uint64_t bit = 0;
    for (std::int64_t c = 0; c < b.cols; ++c)
      for (std::int64_t r = 0; r < b.rows; ++r, bit += static_cast<std::uint64_t>(weight_bits_)) {
        const std::size_t k = static_cast<std::size_t>((b.col0 + c) * op.inputs + b.row0 + r);  // W is outputs × inputs
        const std::uint32_t code = stored.read[k];
        for (int j = 0; j < weight_bits_; ++j)
          if ((code >> j) & 1u) buffer_[(bit + static_cast<std::uint64_t>(j)) / 8] |= static_cast<std::uint8_t>(1u << ((bit + j) % 8));
        for (std::uint64_t l = bit / 8 / line; l <= (bit + static_cast<std::uint64_t>(weight_bits_) - 1) / 8 / line; ++l)
          verify.line_rounds[l] = std::max<int>(verify.line_rounds[l], stored.attempts[k]);
        verify.attempts += stored.attempt_sum[k];
      }
    tlm::tlm_generic_payload payload;
    payload.set_command(tlm::TLM_WRITE_COMMAND);
    payload.set_address(b.address);
    payload.set_data_ptr(buffer_.data());
    payload.set_data_length(static_cast<unsigned>(b.bytes));
    payload.set_streaming_width(static_cast<unsigned>(b.bytes));
    payload.set_extension(&verify);
    transport(payload);
    payload.clear_extension(&verify);
  }
}

bool MemoryMacSystem::stored_weights(int layer, int part, models::MatrixRM& out) {
  const auto it = regions_.find(std::make_pair(layer, part));
  if (it == regions_.end()) return false;
  const Region& region = it->second;
  out.resize(region.outputs, region.inputs);
  std::vector<std::uint8_t> data;
  for (const auto& b : layout(region.inputs, region.outputs, region.base)) {
    data.assign(b.bytes, 0);
    tlm::tlm_generic_payload payload;
    payload.set_command(tlm::TLM_READ_COMMAND);
    payload.set_address(b.address);
    payload.set_data_ptr(data.data());
    payload.set_data_length(static_cast<unsigned>(b.bytes));
    to_memory->transport_dbg(payload);
    std::uint64_t bit = 0;
    for (std::int64_t c = 0; c < b.cols; ++c)
      for (std::int64_t r = 0; r < b.rows; ++r, bit += static_cast<std::uint64_t>(weight_bits_)) {
        std::uint32_t code = 0;
        for (int j = 0; j < weight_bits_; ++j)
          code |= static_cast<std::uint32_t>((data[(bit + static_cast<std::uint64_t>(j)) / 8] >> ((bit + j) % 8)) & 1u) << j;
        out(b.col0 + c, b.row0 + r) = static_cast<float>(static_cast<long>(code) - (1L << (weight_bits_ - 1))) * region.scale;
      }
  }
  return true;
}

void MemoryMacSystem::multiply(Operation& op) {
  const auto it = regions_.find(std::make_pair(op.layer, op.part));
  if (it == regions_.end()) SC_REPORT_ERROR("faultline/memory", "layer read before it was programmed");
  const std::vector<Block> blocks = layout(op.inputs, op.outputs, it->second.base);
  const std::int64_t count = static_cast<std::int64_t>(blocks.size());
  fetched_ = consumed_ = 0;
  // Fetch: a block may be fetched once a weight buffer is free (buffers_ of them).
  sc_core::sc_process_handle fetcher = sc_core::sc_spawn([this, &blocks, count] {
    std::vector<std::uint8_t> data;
    for (std::int64_t b = 0; b < count; ++b) {
      while (b - consumed_ >= buffers_) wait(buffer_freed_);
      const Block& block = blocks[static_cast<std::size_t>(b)];
      data.resize(block.bytes);
      tlm::tlm_generic_payload payload;
      payload.set_command(tlm::TLM_READ_COMMAND);
      payload.set_address(block.address);
      payload.set_data_ptr(data.data());
      payload.set_data_length(static_cast<unsigned>(block.bytes));
      payload.set_streaming_width(static_cast<unsigned>(block.bytes));
      const sc_time start = sc_core::sc_time_stamp();
      fetching.write(true);
      transport(payload);
      fetching.write(false);
      counters.add("cycles_fetch", (sc_core::sc_time_stamp() - start) / period());
      ++fetched_;
      block_fetched_.notify(sc_core::SC_ZERO_TIME);
    }
  });
  // Compute: one input vector per cycle through the MAC array once a block is in its buffer.
  const double v = static_cast<double>(op.vectors);
  for (std::int64_t b = 0; b < count; ++b) {
    while (fetched_ <= b) wait(block_fetched_);
    const Block& block = blocks[static_cast<std::size_t>(b)];
    const double cycles = v + mac_latency_;
    computing.write(true);
    wait(cycles * period());
    computing.write(false);
    const double block_macs = v * static_cast<double>(block.rows * block.cols);
    counters.add("cycles_compute", cycles);
    counters.add("macs", block_macs);
    counters.add("energy_mac_pj", block_macs * mac_pj_);
    counters.add("energy_pj", block_macs * mac_pj_);
    counters.add("mac_blocks", 1);
    ++consumed_;
    buffer_freed_.notify(sc_core::SC_ZERO_TIME);
  }
  counters.add("vectors", v);
  if (!fetcher.terminated()) wait(fetcher.terminated_event());
}

void MemoryMacSystem::execute(Operation& op) {
  if (op.type == Operation::Type::Program) program(op);
  else multiply(op);
}


double MemoryMacSystem::peak_macs_per_cycle(const Operation&) const { return static_cast<double>(mac_rows_) * mac_cols_; }

void MemoryMacSystem::trace(sc_core::sc_trace_file* file) const {
  UnitSystem::trace(file);
  sc_core::sc_trace(file, fetching, fetching.name());
  sc_core::sc_trace(file, computing, computing.name());
}

// The cycle-level model of the rram_memory kind; the simulated memory holds the weights it is
// programmed with (the wrapped substrate passes them on), so that reads return its stored bits.
FAULTLINE_REGISTER_CYCLE_MODEL(rram_memory, (CycleModel{[](const char* name, const UnitSpec& spec) -> std::unique_ptr<UnitSystem> {
                                                          return std::make_unique<MemoryMacSystem>(name, spec);
                                                        },
                                                        true}))

}  // namespace faultline::sim
