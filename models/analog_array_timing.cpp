#include "models/analog_array_timing.h"

namespace faultline::models {

ParamTable<AnalogArrayTiming> AnalogArrayTiming::table(bool with_columns, const std::string& clock_source) {
  using A = AnalogArrayTiming;
  ParamTable<A> p;
  p.number("clock_mhz", &A::clock_mhz, 1, 1e5, "MHz", "clock of the array controller; every latency below is in its cycles (" + clock_source + ")")
      .integer("arrays", &A::arrays, 0, 1e6, "",
               "arrays with their own periphery working in parallel; a layer's tiles go to them round-robin, "
               "tiles sharing an array run one after another (0: one array per tile)");
  if (with_columns)
    p.integer("array_columns", &A::array_columns, 1, 65536, "columns", "columns (neurons) of one array; wider layers take several arrays (BSS-2: 256 per half)");
  p.integer("input_cycles", &A::input_cycles, 0, 1e9, "cycles", "input stage per vector, all rows at once (DAC settling)")
      .integer("row_event_cycles", &A::row_event_cycles, 0, 1e9, "cycles", "input stage per used row, rows sent one after another (event input; 1/event rate)")
      .integer("integration_cycles", &A::integration_cycles, 0, 1e9, "cycles", "integration (read) per vector")
      .integer("adc_cycles", &A::adc_cycles, 0, 1e9, "cycles", "one ADC conversion")
      .integer("columns_per_adc", &A::columns_per_adc, 1, 65536, "columns", "columns sharing one ADC (converted one after another)")
      .integer("accumulate_cycles", &A::accumulate_cycles, 0, 1e9, "cycles", "digital partial-sum accumulation of one tile's outputs per vector")
      .flag("pipelined", &A::pipelined, "input, integration, conversion and accumulation of consecutive vectors overlap (double-buffered stage registers)")
      .integer("program_row_cycles", &A::program_row_cycles, 0, 1e9, "cycles", "writing one array row once (all its cells in parallel); write-verify repeats it");
  return p;
}

const ParamTable<AnalogArrayEnergy>& AnalogArrayEnergy::table() {
  static const ParamTable<AnalogArrayEnergy> t = [] {
    using E = AnalogArrayEnergy;
    ParamTable<E> p;
    p.number("input_pj", &E::input_pj, 0, 1e9, "pJ", "input stage per used row and vector")
        .number("cell_pj", &E::cell_pj, 0, 1e9, "pJ", "one cell's contribution to one read (per used cell and vector)")
        .number("adc_pj", &E::adc_pj, 0, 1e9, "pJ", "one ADC conversion")
        .number("accumulate_pj", &E::accumulate_pj, 0, 1e9, "pJ", "adding one partial sum (16-bit add, Horowitz ISSCC 2014: 0.05 pJ)")
        .number("program_pj", &E::program_pj, 0, 1e9, "pJ", "one cell write attempt while programming");
    return p;
  }();
  return t;
}

}  // namespace faultline::models
