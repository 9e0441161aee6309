#include "sim/analog_array.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/error.h"

namespace faultline::sim {

using sc_core::sc_time;

namespace {
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
// The most arrays "one per tile" may elaborate; beyond, the hwcfg must say how many exist.
constexpr std::int64_t kMaxArrays = 4096;
}  // namespace

double ArrayTiming::Stages::max() const { return std::max({input, integration, adc, accumulate}); }

ArrayTiming::Stages ArrayTiming::stages(std::int64_t used_rows, std::int64_t used_cols) const {
  const std::int64_t adcs = ceil_div(columns, columns_per_adc);
  return {static_cast<double>(input_cycles + used_rows * row_event_cycles), static_cast<double>(integration_cycles),
          static_cast<double>(ceil_div(used_cols, adcs) * adc_cycles), static_cast<double>(accumulate_cycles)};
}

double ArrayTiming::operation_cycles(std::int64_t vectors, std::int64_t used_rows, std::int64_t used_cols) const {
  if (vectors <= 0) return 0;
  const Stages s = stages(used_rows, used_cols);
  return pipelined ? s.sum() + static_cast<double>(vectors - 1) * s.max() : static_cast<double>(vectors) * s.sum();
}

AnalogArray::AnalogArray(const sc_core::sc_module_name& name, const ArrayTiming& timing, const ArrayEnergy& energy, CounterSet& counters)
    : sc_module(name), socket("socket"), busy("busy"), timing_(timing), energy_(energy), counters_(counters) {
  socket.register_b_transport(this, &AnalogArray::b_transport);
}

void AnalogArray::b_transport(tlm::tlm_generic_payload& payload, sc_time& delay) {
  ArrayCommand* command = nullptr;
  payload.get_extension(command);
  if (command == nullptr) {
    payload.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
    return;
  }
  wait(delay);
  delay = sc_core::SC_ZERO_TIME;
  busy.write(true);
  const double v = static_cast<double>(command->vectors), r = static_cast<double>(command->rows), c = static_cast<double>(command->cols);
  double cycles = 0;
  CounterSet& k = counters_;
  if (command->kind == ArrayCommand::Kind::Program) {
    // Rows are written one after another, all cells of a row at once; write-verify repeats.
    cycles = r * command->rounds * timing_.program_row_cycles;
    const double energy = command->attempts * energy_.program_pj;
    k.add("program_array_cycles", cycles);
    k.add("program_row_writes", r * command->rounds);
    k.add("energy_program_pj", energy);
    k.add("energy_pj", energy);
  } else {
    const ArrayTiming::Stages s = timing_.stages(command->rows, command->cols);
    cycles = timing_.operation_cycles(command->vectors, command->rows, command->cols);
    const double e_input = v * r * energy_.input_pj, e_cell = v * r * c * energy_.cell_pj, e_adc = v * c * energy_.adc_pj,
                 e_acc = v * c * energy_.accumulate_pj;
    k.add("array_ops", 1);
    k.add("vectors", v);
    k.add("macs", v * r * c);
    k.add("conversions", v * c);
    k.add("array_busy_cycles", cycles);
    k.add("cycles_input", v * s.input);
    k.add("cycles_integration", v * s.integration);
    k.add("cycles_adc", v * s.adc);
    k.add("cycles_accumulate", v * s.accumulate);
    k.add("energy_input_pj", e_input);
    k.add("energy_cell_pj", e_cell);
    k.add("energy_adc_pj", e_adc);
    k.add("energy_accumulate_pj", e_acc);
    k.add("energy_pj", e_input + e_cell + e_adc + e_acc);
  }
  wait(timing_.period * cycles);
  busy.write(false);
  payload.set_response_status(tlm::TLM_OK_RESPONSE);
}


AnalogArraySystem::AnalogArraySystem(const sc_core::sc_module_name& name, const UnitSpec& spec, std::int64_t rows, std::int64_t columns,
                                     const models::AnalogArrayTiming& t, const models::AnalogArrayEnergy& e)
    : UnitSystem(name, t.clock_mhz) {
  timing_.period = period();
  timing_.rows = rows;
  timing_.columns = columns;
  timing_.input_cycles = t.input_cycles;
  timing_.row_event_cycles = t.row_event_cycles;
  timing_.integration_cycles = t.integration_cycles;
  timing_.adc_cycles = t.adc_cycles;
  timing_.columns_per_adc = t.columns_per_adc;
  timing_.accumulate_cycles = t.accumulate_cycles;
  timing_.pipelined = t.pipelined;
  timing_.program_row_cycles = t.program_row_cycles;
  energy_ = {e.input_pj, e.cell_pj, e.adc_pj, e.accumulate_pj, e.program_pj};

  std::int64_t count = t.arrays;
  if (count == 0) {  // one per tile of the largest layer
    count = 1;
    for (const auto& [in, out] : spec.block_shapes)
      count = std::max(count, ceil_div(in, timing_.rows) * ceil_div(out, timing_.columns));
    if (count > kMaxArrays)
      throw Error("unit " + spec.name + ": one array per tile would need " + std::to_string(count) + " arrays (at most " +
                  std::to_string(kMaxArrays) + "); set timing.arrays");
  }
  for (std::int64_t a = 0; a < count; ++a) {
    const std::string n = "array" + std::to_string(a);
    arrays_.push_back(std::make_unique<AnalogArray>(n.c_str(), timing_, energy_, counters));
    sockets_.push_back(std::make_unique<tlm_utils::simple_initiator_socket<AnalogArraySystem>>(("to_" + n).c_str()));
    sockets_.back()->bind(arrays_.back()->socket);
  }
}

std::int64_t AnalogArraySystem::tiles(const Operation& op) const {
  return ceil_div(op.inputs, timing_.rows) * ceil_div(op.outputs, timing_.columns);
}

void AnalogArraySystem::execute(Operation& op) {
  const std::int64_t row_blocks = ceil_div(op.inputs, timing_.rows);
  const std::int64_t total = tiles(op);
  const std::int64_t used = std::min<std::int64_t>(total, static_cast<std::int64_t>(arrays_.size()));
  const bool program = op.type == Operation::Type::Program;
  // Programming: the behavioural model's write attempts per cell, rounded up, are the row
  // write-verify repeats (every row takes the mean number of rounds); attempts are shared over
  // the tiles by their cell counts.
  const double cells = static_cast<double>(op.inputs) * static_cast<double>(op.outputs);
  const int rounds = program ? std::max(1, static_cast<int>(std::ceil(op.write_attempts / std::max(1.0, op.cells) - 1e-9))) : 1;
  std::vector<sc_core::sc_process_handle> workers;
  for (std::int64_t a = 0; a < used; ++a) {
    workers.push_back(sc_core::sc_spawn([this, &op, a, used, total, row_blocks, program, rounds, cells] {
      for (std::int64_t k = a; k < total; k += used) {
        const std::int64_t i = k % row_blocks, j = k / row_blocks;
        ArrayCommand command;
        command.kind = program ? ArrayCommand::Kind::Program : ArrayCommand::Kind::Read;
        command.vectors = op.vectors;
        command.rows = std::min(timing_.rows, op.inputs - i * timing_.rows);
        command.cols = std::min(timing_.columns, op.outputs - j * timing_.columns);
        command.rounds = rounds;
        command.attempts = program ? op.write_attempts * static_cast<double>(command.rows * command.cols) / cells : 0.0;
        tlm::tlm_generic_payload payload;
        payload.set_command(program ? tlm::TLM_WRITE_COMMAND : tlm::TLM_READ_COMMAND);
        payload.set_address(0);
        payload.set_data_ptr(nullptr);
        payload.set_data_length(0);
        payload.set_extension(&command);
        sc_time delay = sc_core::SC_ZERO_TIME;
        (*sockets_[static_cast<std::size_t>(a)])->b_transport(payload, delay);
        payload.clear_extension(&command);
        if (payload.get_response_status() != tlm::TLM_OK_RESPONSE)
          SC_REPORT_ERROR("faultline/array", "array rejected a command");
      }
    }));
  }
  for (auto& w : workers)
    if (!w.terminated()) wait(w.terminated_event());
}


double AnalogArraySystem::peak_macs_per_cycle(const Operation& op) const {
  // All arrays the layer occupies, every cell in use, vectors at the interval of a full tile.
  const std::int64_t used = std::min<std::int64_t>(tiles(op), static_cast<std::int64_t>(arrays_.size()));
  const ArrayTiming::Stages s = timing_.stages(timing_.rows, timing_.columns);
  const double interval = std::max(1.0, timing_.pipelined ? s.max() : s.sum());
  return static_cast<double>(used) * static_cast<double>(timing_.rows * timing_.columns) / interval;
}

void AnalogArraySystem::trace(sc_core::sc_trace_file* file) const {
  UnitSystem::trace(file);
  for (const auto& a : arrays_) sc_core::sc_trace(file, a->busy, a->busy.name());
}

}  // namespace faultline::sim
