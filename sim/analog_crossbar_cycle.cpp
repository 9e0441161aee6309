// The cycle-level model of the analog_crossbar kind: an analog array unit (sim/analog_array.h)
// whose arrays are the kind's tiles (tile_rows × tile_cols).
#include "models/analog_crossbar.h"
#include "sim/analog_array.h"

namespace faultline::sim {
namespace {

std::unique_ptr<UnitSystem> make_crossbar_system(const char* name, const UnitSpec& spec) {
  const models::AnalogCrossbarConfig config = models::AnalogCrossbarConfig::table().read(spec.params);
  const models::AnalogArrayTiming timing = models::AnalogArrayTiming::table(false, "").read(spec.timing);
  return std::make_unique<AnalogArraySystem>(name, spec, config.tile_rows, config.tile_cols, timing,
                                             models::AnalogArrayEnergy::table().read(spec.energy));
}

}  // namespace

FAULTLINE_REGISTER_CYCLE_MODEL(analog_crossbar, CycleModel{&make_crossbar_system, false})

}  // namespace faultline::sim
