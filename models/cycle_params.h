// The timing and energy parameters of the cycle-approximate models (sim/), declared here so that
// a hardware description is validated (and documented) without SystemC: nn/ reads a unit's
// `timing:` and `energy:` sections against these specs, sim/ builds its modules from the values.
// Latencies are in cycles of the unit's clock, energies in pJ. Every default names its source;
// figures no publication gave us are marked "assumed" and should be replaced by a macro's own.
#pragma once

#include "models/substrate.h"

namespace faultline::models {

// Fills `kind.timing` and `kind.energy` for the kinds that have a cycle-level model
// (analog_crossbar, analog_mac, rram_memory); leaves the others empty.
void attach_cycle_params(SubstrateKind& kind);

}  // namespace faultline::models
