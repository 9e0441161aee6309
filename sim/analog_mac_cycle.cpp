// The cycle-level model of the analog_mac kind (BrainScaleS-2 style): an analog array unit
// (sim/analog_array.h) whose arrays take rows_per_chunk rows (one ADC read integrates one chunk)
// and timing.array_columns columns.
#include "models/analog_mac.h"
#include "sim/analog_array.h"

namespace faultline::sim {
namespace {

std::unique_ptr<UnitSystem> make_analog_mac_system(const char* name, const UnitSpec& spec) {
  const models::AnalogMacConfig config = models::AnalogMacConfig::table().read(spec.params);
  const models::AnalogArrayTiming timing = models::AnalogArrayTiming::table(true, "").read(spec.timing);
  return std::make_unique<AnalogArraySystem>(name, spec, config.rows_per_chunk, timing.array_columns, timing,
                                             models::AnalogArrayEnergy::table().read(spec.energy));
}

}  // namespace

FAULTLINE_REGISTER_CYCLE_MODEL(analog_mac, CycleModel{&make_analog_mac_system, false})

}  // namespace faultline::sim
