// Analog MAC arrays (resistive crossbars, BrainScaleS-2 synapse arrays) and the controller that
// tiles a layer onto them. Timing follows sim/README.md ("Analog arrays"):
//
//   per vector on a tile with r used rows and c used columns:
//     input      t_in  = input_cycles + r · row_event_cycles
//     integrate  t_int = integration_cycles
//     convert    t_adc = ceil(c / n_adc) · adc_cycles,  n_adc = ceil(array columns / columns_per_adc)
//     accumulate t_acc = accumulate_cycles
//   one array operation on V vectors:
//     pipelined: (t_in + t_int + t_adc + t_acc) + (V − 1) · max(t_in, t_int, t_adc, t_acc)
//     otherwise: V · (t_in + t_int + t_adc + t_acc)
//
// One array operation (a tile × a block of V vectors) is one TLM transaction with one wait: the
// simulation cost does not grow with the MACs inside it.
#pragma once

#include <memory>
#include <vector>

#include "models/analog_array_timing.h"
#include "sim/unit_system.h"

namespace faultline::sim {

struct ArrayTiming {
  sc_core::sc_time period;
  std::int64_t rows = 256, columns = 256;  // array (tile) geometry
  int input_cycles = 0, row_event_cycles = 0, integration_cycles = 0, adc_cycles = 0, columns_per_adc = 1,
      accumulate_cycles = 0, program_row_cycles = 0;
  bool pipelined = false;

  // Stage cycles per vector for a tile using `rows` × `cols` cells.
  struct Stages {
    double input, integration, adc, accumulate;
    double sum() const { return input + integration + adc + accumulate; }
    double max() const;
  };
  Stages stages(std::int64_t used_rows, std::int64_t used_cols) const;
  double operation_cycles(std::int64_t vectors, std::int64_t used_rows, std::int64_t used_cols) const;
};

struct ArrayEnergy {
  double input_pj = 0, cell_pj = 0, adc_pj = 0, accumulate_pj = 0, program_pj = 0;
};

// What one transaction asks of an array.
struct ArrayCommand : tlm::tlm_extension<ArrayCommand> {
  enum class Kind { Read, Program };
  Kind kind = Kind::Read;
  std::int64_t vectors = 0, rows = 0, cols = 0;  // used rows and columns of the tile
  int rounds = 1;                                // Program: write-verify repeats per row
  double attempts = 0;                           // Program: cell write attempts (energy)
  tlm::tlm_extension_base* clone() const override { return new ArrayCommand(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override { *this = static_cast<const ArrayCommand&>(other); }
};

// One array with its periphery (input stage, ADCs, accumulator).
class AnalogArray : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<AnalogArray> socket;
  sc_core::sc_signal<bool, sc_core::SC_MANY_WRITERS> busy;

  AnalogArray(const sc_core::sc_module_name& name, const ArrayTiming& timing, const ArrayEnergy& energy, CounterSet& counters);

 private:
  void b_transport(tlm::tlm_generic_payload& payload, sc_core::sc_time& delay);

  const ArrayTiming& timing_;
  const ArrayEnergy& energy_;
  CounterSet& counters_;
};

// A unit of analog arrays: the controller splits a layer into tiles (ceil(inputs/rows) row
// blocks × ceil(outputs/columns) column blocks, column block major), deals them round-robin to
// the arrays, runs the arrays in parallel (each works through its tiles in turn) and finishes
// when the last array does. Weights stay in the arrays (programmed once per trial).
class AnalogArraySystem : public UnitSystem {
 public:
  // `rows` × `columns`: one array's geometry, which each kind takes from its own parameters
  // (sim/analog_crossbar_cycle.cpp, sim/analog_mac_cycle.cpp).
  AnalogArraySystem(const sc_core::sc_module_name& name, const UnitSpec& spec, std::int64_t rows, std::int64_t columns,
                    const models::AnalogArrayTiming& timing, const models::AnalogArrayEnergy& energy);
  void execute(Operation& op) override;
  double peak_macs_per_cycle(const Operation& op) const override;
  void trace(sc_core::sc_trace_file* file) const override;

  const ArrayTiming& timing() const { return timing_; }
  std::size_t arrays() const { return arrays_.size(); }

 private:
  std::int64_t tiles(const Operation& op) const;

  ArrayTiming timing_;
  ArrayEnergy energy_;
  std::vector<std::unique_ptr<AnalogArray>> arrays_;
  std::vector<std::unique_ptr<tlm_utils::simple_initiator_socket<AnalogArraySystem>>> sockets_;
};

}  // namespace faultline::sim
