// The cycle-level parameters of an analog array unit (a resistive crossbar or a BrainScaleS-2
// synapse array with its periphery: input stage, integration, ADCs shared across columns, digital
// partial-sum accumulation; sim/README.md, "Analog arrays"). One struct serves both kinds that
// have such a unit; each passes its own defaults (analog_crossbar.cpp, analog_mac.cpp), and
// sim/analog_array.cpp reads the typed fields. Latencies are in cycles of clock_mhz, energies in pJ.
#pragma once

#include "models/param_table.h"

namespace faultline::models {

struct AnalogArrayTiming {
  double clock_mhz = 1000;
  int arrays = 0;            // 0: one array per tile
  int array_columns = 256;   // only where the kind's parameters do not give the array width
  int input_cycles = 0, row_event_cycles = 0, integration_cycles = 0, adc_cycles = 0, columns_per_adc = 1, accumulate_cycles = 0;
  bool pipelined = false;
  int program_row_cycles = 0;
  // The declaration; `with_columns` adds array_columns (for kinds whose array width is not a
  // functional parameter). `clock_source` names where the clock default comes from.
  static ParamTable<AnalogArrayTiming> table(bool with_columns, const std::string& clock_source);
};

struct AnalogArrayEnergy {
  double input_pj = 0, cell_pj = 0, adc_pj = 0, accumulate_pj = 0, program_pj = 0;
  static const ParamTable<AnalogArrayEnergy>& table();
};

}  // namespace faultline::models
