// `analog_mac` (analog_mac.cpp): its parameters, shared with its cycle-level model
// (sim/analog_mac_cycle.cpp), which sizes the arrays by rows_per_chunk.
#pragma once

#include <string>

#include "models/param_table.h"

namespace faultline::models {

// Defaults: BrainScaleS-2 and hxtorch's software mock (gain 0.002, σ 2.0, 8-bit signed ADC,
// 5-bit inputs, 6-bit weights, 128 signed rows per array half), with the ordering effects off.
struct AnalogMacConfig {
  int input_bits = 5, weight_bits = 6, rows_per_chunk = 128;
  double gain = 0.002, noise_sigma = 2.0, adc_min = -128, adc_max = 127;
  double leak = 0, saturation = 0, position_gain_slope = 0, fixed_pattern_sigma = 0;
  std::string order = "natural";
  static const ParamTable<AnalogMacConfig>& table();
};

}  // namespace faultline::models
