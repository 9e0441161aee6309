// Resistive memory cells: how a target conductance becomes a stored one (programming noise,
// write failures, write-verify, stuck cells, drift) and what a read returns. Conductances in µS.
//
// Two device models:
//  * `rram`: programming noise σ(G) = slope·G + offset (CrossSim's "Milo" fit, σ(G) = −0.009107·G +
//    4.782321 µS for 50–225 µS); read noise σ_read·G per read; drift G(t) = G0·(t/t0)^(−ν) with
//    ν ~ N(μ_ν, σ_ν) per cell (Emonds, Xi, Fröning, arXiv 2401.05820, device facts).
//  * `pcm`: IBM aihwkit's PCM statistics (inference/noise/pcm.py; g_rel = G/g_max): programming
//    noise σ = 0.26348 + 1.9650·g_rel − 1.1731·g_rel² µS; drift with t0 = 20 s and per-device
//    ν ~ N(μ_ν, σ_ν), μ_ν = clamp(−0.0155·ln g_rel + 0.0244, 0.049, 0.1),
//    σ_ν = clamp(−0.0125·ln g_rel − 0.0059, 0.008, 0.045); 1/f read noise at time t:
//    σ = G·Q_s·sqrt(ln((t + t_read)/(2·t_read))), Q_s = min(0.0088/g_rel^0.65, 0.2), t_read = 250 ns.
// Stuck cells (at G_min or G_max) occur at given rates (MNSIM: 0.1 % each). A write fails (leaves
// the cell as it was) with a given probability; write-verify re-programs until a verify read lies
// within a tolerance of the target, up to a maximum number of iterations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/param_table.h"
#include "models/params.h"
#include "models/philox.h"

namespace faultline::models {

struct DeviceConfig {
  std::string device = "rram";  // "rram" or "pcm"
  double g_min = 50, g_max = 225;
  int levels = 0;               // programmable levels; 0 = continuous (analog)
  double prog_slope = -0.009107, prog_offset = 4.782321;
  double read_sigma = 0.0;      // rram: relative read noise per read
  double nu_mean = 0, nu_std = 0, t0 = 20, t_inference = 20;
  double stuck_low_rate = 0, stuck_high_rate = 0;
  double write_failure_rate = 0;
  int verify_iterations = 0;    // 0: single write, no verify
  double verify_tolerance = 0.5;  // in units of the level spacing

  // The declaration of these fields (ranges, units, sources), nested into each resistive kind's table.
  static const ParamTable<DeviceConfig>& table();
  // Reads the device fields of a resistive kind's validated parameters.
  static DeviceConfig from(const Params& p) { return table().read(p); }
  double level_spacing() const { return levels > 1 ? (g_max - g_min) / (levels - 1) : (g_max - g_min); }
  double programming_sigma(double g) const;
};


struct CellArrayStats {
  std::uint64_t cells = 0, stuck_low = 0, stuck_high = 0, write_failures = 0, verify_iterations = 0, verify_unconverged = 0;
  // Adds these counts to a substrate's counter map (Substrate::add_counters).
  void add_to(std::map<std::string, double>& out) const {
    out["cells"] += static_cast<double>(cells);
    out["stuck_at_gmin"] += static_cast<double>(stuck_low);
    out["stuck_at_gmax"] += static_cast<double>(stuck_high);
    out["write_failures"] += static_cast<double>(write_failures);
    out["write_verify_iterations"] += static_cast<double>(verify_iterations);
    out["verify_unconverged"] += static_cast<double>(verify_unconverged);
  }
};

// Programs `targets` (µS) into cells and returns the conductances read back at t_inference
// (after drift and the read noise of that read). Cell k draws its randomness from index k of the
// streams derived from `streams` (see stream purposes in substrate.h). `attempts`, when given,
// receives each cell's write attempts (0 for a stuck cell).
std::vector<double> program_cells(const DeviceConfig& device, const std::vector<double>& targets, std::uint64_t seed,
                                  std::uint64_t trial, int layer, int block, CellArrayStats* stats,
                                  std::vector<std::uint16_t>* attempts = nullptr);

// Per-read noise standard deviation of a cell of conductance g (µS) for the given device.
double read_sigma(const DeviceConfig& device, double g);

}  // namespace faultline::models
