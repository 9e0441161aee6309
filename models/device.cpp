#include "models/device.h"

#include <algorithm>
#include <cmath>

#include "models/det_math.h"
#include "models/substrate.h"

namespace faultline::models {

const ParamTable<DeviceConfig>& DeviceConfig::table() {
  static const ParamTable<DeviceConfig> t = [] {
    using D = DeviceConfig;
    ParamTable<D> p;
    p.choice("device", &D::device, {"rram", "pcm"}, "device statistics: rram (CrossSim Milo fit, linear drift model) or pcm (aihwkit PCM model)")
        .number("g_min", &D::g_min, 0.0, 1e6, "µS", "lowest programmable conductance")
        .number("g_max", &D::g_max, 1e-3, 1e6, "µS", "highest programmable conductance (aihwkit PCM: 25 µS)")
        .integer("levels", &D::levels, 0, 65536, "", "programmable conductance levels (0: continuous)")
        .number("prog_sigma_slope", &D::prog_slope, -1.0, 1.0, "", "rram: programming noise σ(G) = slope·G + offset (CrossSim Milo fit: −0.009107)")
        .number("prog_sigma_offset", &D::prog_offset, 0.0, 1e4, "µS", "rram: programming noise offset (CrossSim Milo fit: 4.782321 µS)")
        .number("read_sigma", &D::read_sigma, 0.0, 10.0, "", "rram: read noise per read, relative to G (pcm uses aihwkit's 1/f model instead)")
        .number("drift_nu_mean", &D::nu_mean, -1.0, 1.0, "", "rram: mean drift exponent ν (pcm: from aihwkit's μ_ν(g_rel))")
        .number("drift_nu_std", &D::nu_std, 0.0, 1.0, "", "rram: spread of ν between cells (pcm: aihwkit's σ_ν(g_rel))")
        .number("drift_t0", &D::t0, 1e-9, 1e12, "s", "time of programming reference t0 (aihwkit: 20 s)")
        .number("t_inference", &D::t_inference, 1e-9, 1e12, "s", "time after programming at which the network is read (no drift while ≤ t0)")
        .number("stuck_at_gmin_rate", &D::stuck_low_rate, 0.0, 1.0, "", "fraction of cells stuck at G_min (MNSIM: 0.001)")
        .number("stuck_at_gmax_rate", &D::stuck_high_rate, 0.0, 1.0, "", "fraction of cells stuck at G_max (MNSIM: 0.001)")
        .number("write_failure_rate", &D::write_failure_rate, 0.0, 1.0, "", "probability that a write attempt leaves the cell unchanged")
        .integer("verify_max_iterations", &D::verify_iterations, 0, 1000, "", "write-verify: maximum write attempts (0: one write, no verify)")
        .number("verify_tolerance", &D::verify_tolerance, 0.0, 100.0, "", "write-verify: accept when |read − target| ≤ tolerance × level spacing");
    return p;
  }();
  return t;
}

double DeviceConfig::programming_sigma(double g) const {
  if (device == "pcm") {
    const double g_rel = std::clamp(g / g_max, 0.0, 1.0);
    return std::max(0.0, 0.26348 + 1.9650 * g_rel - 1.1731 * g_rel * g_rel);
  }
  return std::max(0.0, prog_slope * g + prog_offset);
}

double read_sigma(const DeviceConfig& d, double g) {
  if (d.device == "pcm") {
    constexpr double t_read = 250e-9;
    const double g_rel = std::max(g / d.g_max, 1e-6);
    const double q_s = std::min(0.0088 / det::pow(g_rel, 0.65), 0.2);
    const double t = std::max(d.t_inference, t_read);
    return std::max(0.0, g) * q_s * std::sqrt(det::log((t + t_read) / (2 * t_read)));
  }
  return d.read_sigma * std::abs(g);
}

std::vector<double> program_cells(const DeviceConfig& d, const std::vector<double>& targets, std::uint64_t seed, std::uint64_t trial,
                                   int layer, int block, CellArrayStats* stats, std::vector<std::uint16_t>* cell_attempts) {
  const CounterRng stuck(seed, stream_id(trial, layer, block, Purpose::Stuck));
  const CounterRng noise(seed, stream_id(trial, layer, block, Purpose::ProgrammingNoise));
  const CounterRng fail(seed, stream_id(trial, layer, block, Purpose::WriteFailure));
  const CounterRng verify(seed, stream_id(trial, layer, block, Purpose::ProgramRead));
  const CounterRng drift(seed, stream_id(trial, layer, block, Purpose::Drift));
  const double tolerance = d.verify_tolerance * d.level_spacing();
  const int attempts = std::max(1, d.verify_iterations);
  std::vector<double> out(targets.size());
  if (cell_attempts) cell_attempts->assign(targets.size(), 0);
  for (std::size_t k = 0; k < targets.size(); ++k) {
    const std::uint64_t cell = k;
    const double target = targets[k];
    ++stats->cells;
    double g;
    const float u = stuck.uniform(cell);
    if (u < d.stuck_low_rate) {
      g = d.g_min;
      ++stats->stuck_low;
    } else if (u < d.stuck_low_rate + d.stuck_high_rate) {
      g = d.g_max;
      ++stats->stuck_high;
    } else {
      g = d.g_min;  // cells start reset
      bool converged = false;
      for (int a = 0; a < attempts; ++a) {
        const std::uint64_t draw = cell * 1024 + static_cast<std::uint64_t>(a);  // 1024 > any attempt count
        ++stats->verify_iterations;
        if (cell_attempts) ++(*cell_attempts)[k];
        if (fail.uniform(draw) < d.write_failure_rate) ++stats->write_failures;
        else g = std::max(0.0, target + d.programming_sigma(target) * noise.normal(draw));
        if (d.verify_iterations == 0) { converged = true; break; }
        const double seen = g + read_sigma(d, g) * verify.normal(draw);
        if (std::abs(seen - target) <= tolerance) { converged = true; break; }
      }
      if (!converged) ++stats->verify_unconverged;
    }
    // Drift: G(t) = G0·(t/t0)^(−ν) once t exceeds t0.
    if (d.t_inference > d.t0) {
      double mu = d.nu_mean, sd = d.nu_std;
      if (d.device == "pcm") {
        const double g_rel = std::max(g / d.g_max, 1e-6);
        mu = std::clamp(-0.0155 * det::log(g_rel) + 0.0244, 0.049, 0.1);
        sd = std::clamp(-0.0125 * det::log(g_rel) - 0.0059, 0.008, 0.045);
      }
      const double nu = mu + sd * drift.normal(cell);
      if (mu != 0 || sd != 0) g *= det::pow(d.t_inference / d.t0, -nu);
    }
    out[k] = g;
  }
  return out;
}

}  // namespace faultline::models
