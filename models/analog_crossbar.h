// `analog_crossbar` (analog_crossbar.cpp): its parameters, shared with its cycle-level model
// (sim/analog_crossbar_cycle.cpp), which tiles layers by the same geometry.
#pragma once

#include <string>

#include "models/device.h"
#include "models/param_table.h"

namespace faultline::models {

// Defaults: aihwkit's inference tile and periphery (parameters/io.py: 7-bit DAC, 9-bit ADC, output
// bound 12, output noise 0.06, tiles of at most 512×512); CrossSim's Milo RRAM fit for the device.
struct AnalogCrossbarConfig {
  DeviceConfig device;
  int tile_rows = 512, tile_cols = 512;
  std::string input_scaling = "abs_max";
  double input_range = 1.0;
  int dac_bits = 7, adc_bits = 9;
  double out_bound = 12.0, out_noise = 0.06;
  double gain_sigma = 0, offset_sigma = 0, ir_drop = 0;
  bool drift_compensation = true;
  static const ParamTable<AnalogCrossbarConfig>& table();
};

}  // namespace faultline::models
