#include "models/cycle_params.h"

namespace faultline::models {
namespace {

using T = ParamSpec::Type;

// An analog array (crossbar or BSS-2 synapse array) with its periphery: input stage, integration,
// ADCs shared across columns, digital partial-sum accumulation (sim/README.md, "Analog arrays").
struct ArrayDefaults {
  double clock_mhz, input_cycles, row_event_cycles, integration_cycles, adc_cycles, columns_per_adc, accumulate_cycles;
  bool pipelined;
  double program_row_cycles;
  double input_pj, cell_pj, adc_pj, accumulate_pj, program_pj;
  const char* source;
};

std::vector<ParamSpec> array_timing(const ArrayDefaults& d, bool with_columns) {
  std::vector<ParamSpec> p = {
      {"clock_mhz", T::Number, d.clock_mhz, 1, 1e5, {}, "MHz", std::string("clock of the array controller; every latency below is in its cycles (") + d.source + ")"},
      {"arrays", T::Integer, 0, 0, 1e6, {}, "", "arrays with their own periphery working in parallel; a layer's tiles go to them round-robin, "
                                                "tiles sharing an array run one after another (0: one array per tile)"}};
  if (with_columns)
    p.push_back({"array_columns", T::Integer, 256, 1, 65536, {}, "columns", "columns (neurons) of one array; wider layers take several arrays (BSS-2: 256 per half)"});
  const std::vector<ParamSpec> rest = {
      {"input_cycles", T::Integer, d.input_cycles, 0, 1e9, {}, "cycles", "input stage per vector, all rows at once (DAC settling)"},
      {"row_event_cycles", T::Integer, d.row_event_cycles, 0, 1e9, {}, "cycles", "input stage per used row, rows sent one after another (event input; 1/event rate)"},
      {"integration_cycles", T::Integer, d.integration_cycles, 0, 1e9, {}, "cycles", "integration (read) per vector"},
      {"adc_cycles", T::Integer, d.adc_cycles, 0, 1e9, {}, "cycles", "one ADC conversion"},
      {"columns_per_adc", T::Integer, d.columns_per_adc, 1, 65536, {}, "columns", "columns sharing one ADC (converted one after another)"},
      {"accumulate_cycles", T::Integer, d.accumulate_cycles, 0, 1e9, {}, "cycles", "digital partial-sum accumulation of one tile's outputs per vector"},
      {"pipelined", T::Bool, d.pipelined ? 1.0 : 0.0, 0, 1, {}, "", "input, integration, conversion and accumulation of consecutive vectors overlap (double-buffered stage registers)"},
      {"program_row_cycles", T::Integer, d.program_row_cycles, 0, 1e9, {}, "cycles", "writing one array row once (all its cells in parallel); write-verify repeats it"},
  };
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

std::vector<ParamSpec> array_energy(const ArrayDefaults& d) {
  return {
      {"input_pj", T::Number, d.input_pj, 0, 1e9, {}, "pJ", "input stage per used row and vector"},
      {"cell_pj", T::Number, d.cell_pj, 0, 1e9, {}, "pJ", "one cell's contribution to one read (per used cell and vector)"},
      {"adc_pj", T::Number, d.adc_pj, 0, 1e9, {}, "pJ", "one ADC conversion"},
      {"accumulate_pj", T::Number, d.accumulate_pj, 0, 1e9, {}, "pJ", "adding one partial sum (16-bit add, Horowitz ISSCC 2014: 0.05 pJ)"},
      {"program_pj", T::Number, d.program_pj, 0, 1e9, {}, "pJ", "one cell write attempt while programming"},
  };
}

std::vector<ParamSpec> memory_timing() {
  return {
      {"clock_mhz", T::Number, 1000, 1, 1e5, {}, "MHz", "clock of memory controller and MAC array (assumed 1 GHz)"},
      {"banks", T::Integer, 8, 1, 4096, {}, "", "independent memory banks; consecutive lines go to consecutive banks"},
      {"line_bytes", T::Integer, 64, 1, 1 << 20, {}, "bytes", "bytes one bank reads or writes at once"},
      {"read_cycles", T::Integer, 10, 1, 1e9, {}, "cycles", "reading one line (RRAM read ~10 ns: assumed typical macro)"},
      {"write_cycles", T::Integer, 50, 1, 1e9, {}, "cycles", "one write pulse on a line (assumed 50 ns SET/RESET pulse)"},
      {"verify_cycles", T::Integer, 10, 0, 1e9, {}, "cycles", "the verify read after each write pulse"},
      {"mac_rows", T::Integer, 16, 1, 4096, {}, "", "inputs of the digital MAC array (VTA GEMM core: 16)"},
      {"mac_cols", T::Integer, 16, 1, 4096, {}, "", "outputs of the digital MAC array (VTA GEMM core: 16)"},
      {"mac_latency_cycles", T::Integer, 4, 0, 1e6, {}, "cycles", "pipeline fill of the MAC array per weight block (assumed)"},
      {"weight_buffers", T::Integer, 2, 1, 64, {}, "", "weight-block buffers between memory and MAC array (2: double buffering, fetch overlaps compute)"},
  };
}

std::vector<ParamSpec> memory_energy() {
  return {
      {"read_pj_per_byte", T::Number, 1.0, 0, 1e9, {}, "pJ", "reading one byte from the RRAM (assumed; order of on-chip NVM reads)"},
      {"write_pj", T::Number, 1.0, 0, 1e9, {}, "pJ", "one write pulse on one cell (assumed; RRAM SET/RESET pulses are pJ-scale)"},
      {"verify_pj", T::Number, 0.1, 0, 1e9, {}, "pJ", "one verify read of one cell (assumed)"},
      {"mac_pj", T::Number, 0.3, 0, 1e9, {}, "pJ", "one digital MAC: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ (Horowitz ISSCC 2014, 45 nm)"},
  };
}

}  // namespace

void attach_cycle_params(SubstrateKind& kind) {
  if (kind.name == "analog_crossbar") {
    // ISAAC (Shafiee et al., ISCA 2016, Table I as we read it): a 100 ns crossbar read, 8-bit ADCs
    // at 1.28 GS/s drawing 2 mW each (1.56 pJ per conversion), one ADC per 128 columns, a
    // pipelined design; 1-bit DACs at 4 mW per 1024 (0.39 fJ per pulse) and 0.3 mW per 128×128
    // array (1.8 fJ per cell per 100 ns read) — ×8 for an 8-bit input delivered bit-serially.
    const ArrayDefaults d{1000, 10, 0, 100, 1, 128, 1, true, 100, 0.0031, 0.0146, 1.56, 0.05, 1.0,
                          "1 GHz assumed; latencies from ISAAC, ISCA 2016; DAC settling and row programming assumed"};
    kind.timing = array_timing(d, false);
    kind.energy = array_energy(d);
  } else if (kind.name == "analog_mac") {
    // BrainScaleS-2: inputs arrive as row events one after another, the column-parallel CADC
    // converts every column at once (columns_per_adc 1), integration and readout are not
    // overlapped (the membranes are reset between vectors). The latencies and energies are
    // assumed, not published figures: set them from measurements of your setup.
    const ArrayDefaults d{250, 0, 2, 25, 500, 1, 1, false, 4, 0.5, 0.001, 1.0, 0.05, 0.1,
                          "250 MHz, 8 ns per row event, 2 us CADC conversion: assumed"};
    kind.timing = array_timing(d, true);
    kind.energy = array_energy(d);
  } else if (kind.name == "rram_memory") {
    kind.timing = memory_timing();
    kind.energy = memory_energy();
  }
}

}  // namespace faultline::models
