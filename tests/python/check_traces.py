"""traces/python against a trace written by `faultline trace`: arrays match the sidecar, the
error RMS matches the fit's record, the sampler draws z with the tabulated distribution, the
torch hooks add noise of the fitted spread in training mode only, and the example script runs.

Usage: check_traces.py FAULTLINE_BINARY SOURCE_DIR WORK_DIR
"""
import math
import os
import subprocess
import sys

import numpy as np

faultline, source, work = sys.argv[1:4]
sys.path.insert(0, os.path.join(source, "traces", "python"))
import faultline_noise  # noqa: E402

os.makedirs(work, exist_ok=True)
model = os.path.join(work, "mlp.onnx")
trace = os.path.join(work, "trace")
subprocess.run([faultline, "train", "--arch", "mlp", "--epochs", "1", "--limit", "2000", "--out", model], check=True, stdout=subprocess.DEVNULL)
subprocess.run([faultline, "trace", "--model", model, "--hw", "rram_crossbar", "--limit", "300", "--max-samples", "250", "--check-trials", "2",
                "--out", trace], check=True, stdout=subprocess.DEVNULL)

meta, layers = faultline_noise.load_trace(trace)
fits = faultline_noise.load_fit(trace)
assert meta["level"] == "functional" and meta["images"] == 300, meta
assert list(layers) == [l["name"] for l in meta["layers"]] == list(fits), (list(layers), list(fits))
for entry in meta["layers"]:
    layer = layers[entry["name"]]
    assert layer["ideal"].dtype == np.float32
    assert layer["ideal"].shape == (entry["rows_kept"], entry["outputs"]), (layer["ideal"].shape, entry)
    assert entry["rows_kept"] == min(250, entry["rows_seen"]), entry
    rms = float(np.sqrt(np.mean(layer["error"].astype(np.float64) ** 2)))
    fit = fits[entry["name"]]
    # noise_fit.json records the same RMS, computed in C++ from the same float32 values.
    recorded = [l for l in __import__("json").load(open(os.path.join(trace, "noise_fit.json")))["layers"] if l["name"] == entry["name"]][0]
    assert math.isclose(rms, recorded["rms_error"], rel_tol=1e-9), (rms, recorded["rms_error"])
    assert not fit.exact and fit.sigma_offset >= 0 and fit.sigma_slope >= 0

# The sampler: with σ ≡ 1, P(z ≤ q_k) = p_k for the inner entries (the end entries hold the tails'
# mass: P(z = q_0) = p_0, P(z = q_14) = 1 − p_14). n = 200 000 draws; a binomial proportion's standard
# error is sqrt(p(1-p)/n) ≤ 0.0011; 4.4 standard errors is a 99.999 % two-sided bound per check.
noise = next(iter(fits.values()))
unit = faultline_noise.LayerNoise("unit", 1.0, 0.0, noise.quantiles, noise.probabilities)
rng = np.random.default_rng(1)
n = 200000
z = unit.sample(np.zeros(n), rng)
for p, q in list(zip(noise.probabilities, noise.quantiles))[1:-1]:
    frac = float(np.mean(z <= q))
    tol = 4.4 * math.sqrt(p * (1 - p) / n) + 1e-9
    assert abs(frac - p) <= tol + 1.0 / n, (p, q, frac, tol)

try:
    import torch
except ImportError:
    print("torch missing: hook and example checks skipped")
    print("PASS")
    sys.exit(0)

# Hooks: a Linear layer whose fitted noise is σ(y) = 0.5 (normal quantiles): in training mode the
# output moves by noise of σ 0.5 (n = 64 000: the sample σ's standard error is 0.5/sqrt(2n) =
# 0.0014; 0.01 is 7 standard errors), in eval mode it does not move at all.
normal_q = [-3.090232, -2.326348, -1.644854, -1.281552, -0.841621, -0.524401, -0.253347, 0.0, 0.253347, 0.524401, 0.841621, 1.281552,
            1.644854, 2.326348, 3.090232]
torch.manual_seed(0)
lin = torch.nn.Sequential(torch.nn.Linear(16, 64))
handles = faultline_noise.attach(lin, {"fc": faultline_noise.LayerNoise("fc", 0.5, 0.0, normal_q, noise.probabilities)})
x = torch.randn(1000, 16)
lin.eval()
clean = lin(x)
assert torch.equal(clean, lin(x))
lin.train()
diff = (lin(x) - clean).detach().numpy().astype(np.float64)
# z from the 15-point table (linear between entries, held beyond ±3.09) has σ 1.02228, computed
# by integrating its inverse CDF on 10^7 points.
assert abs(diff.std() - 0.5 * 1.02228) < 0.01, diff.std()
assert abs(diff.mean()) < 5 * 0.5 / math.sqrt(diff.size), diff.mean()
for h in handles:
    h.remove()

out = subprocess.run([sys.executable, os.path.join(source, "traces", "python", "train_fashion_mnist.py"), "--fit", trace, "--arch", "mlp",
                      "--epochs", "1", "--limit", "1000", "--test-limit", "500", "--draws", "2"], check=True, capture_output=True, text=True).stdout
assert "noise-aware" in out and "plain" in out, out
print(out)
print("PASS")
