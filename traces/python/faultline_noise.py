"""Faultline noise traces and fitted noise models for Python training.

`faultline trace --out DIR` writes DIR/trace.json (the sidecar), per layer DIR/*.ideal.npy and
DIR/*.hardware.npy (float32, [rows, outputs]: rows of the linear product y = x W^T before the
bias), and the fitted model DIR/noise_fit.json: per layer e = sigma(y) * z with
sigma(y) = sigma_offset + sigma_slope * |y| and z drawn from a quantile table (piecewise-linear
inverse CDF through the traced quantiles, held at the end values).

numpy is required; PyTorch (Debian's python3-torch) only for `attach`, which injects the fitted
noise into a model's Linear/Conv2d layers during training (the noise is added to the forward pass
and is not differentiated: the gradient is the ideal one, straight-through).
"""
import json
import os

import numpy as np


def load_trace(folder):
    """Returns (meta, layers): meta is the sidecar as a dict; layers maps a layer name to a dict
    with 'ideal', 'hardware' and 'error' arrays (float32, [rows, outputs])."""
    path = os.path.join(folder, "trace.json")
    with open(path) as f:
        meta = json.load(f)
    if "faultline_trace" not in meta:
        raise ValueError(f"{path}: not a faultline trace")
    layers = {}
    for layer in meta["layers"]:
        ideal = np.load(os.path.join(folder, layer["ideal"]))
        hardware = np.load(os.path.join(folder, layer["hardware"]))
        if ideal.shape != hardware.shape or ideal.dtype != np.float32:
            raise ValueError(f"{folder}: layer {layer['name']}: ideal {ideal.shape} {ideal.dtype} vs hardware {hardware.shape}")
        layers[layer["name"]] = {"ideal": ideal, "hardware": hardware, "error": hardware - ideal}
    return meta, layers


class LayerNoise:
    """The fitted noise of one layer."""

    def __init__(self, name, sigma_offset, sigma_slope, quantiles, probabilities, exact=False):
        self.name = name
        self.sigma_offset = float(sigma_offset)
        self.sigma_slope = float(sigma_slope)
        self.quantiles = np.asarray(quantiles, dtype=np.float64)
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        self.exact = exact

    def sigma(self, y):
        return self.sigma_offset + self.sigma_slope * np.abs(y)

    def sample(self, y, rng):
        """An error for every element of y (numpy), from a numpy Generator."""
        if self.exact:
            return np.zeros_like(y)
        z = np.interp(rng.random(np.shape(y)), self.probabilities, self.quantiles)
        return (self.sigma(y) * z).astype(np.asarray(y).dtype)


def load_fit(path):
    """Reads noise_fit.json (or a trace folder holding one); returns {layer name: LayerNoise} in layer order."""
    if os.path.isdir(path):
        path = os.path.join(path, "noise_fit.json")
    with open(path) as f:
        fit = json.load(f)
    if "faultline_noise_fit" not in fit:
        raise ValueError(f"{path}: not a faultline noise fit")
    p = fit["probabilities"]
    return {l["name"]: LayerNoise(l["name"], l["sigma_offset"], l["sigma_slope"], l["quantiles"], p, l["exact"]) for l in fit["layers"]}


def attach(model, noises, names=None):
    """Injects fitted noise into a torch model's Linear and Conv2d layers while it is in training
    mode (model.train()); returns the hook handles (call .remove() to detach).

    `noises` is load_fit()'s dict. `names` maps torch module names to fitted layer names; without
    it, the model's Linear/Conv2d modules are matched to the fitted layers in order (the order of
    faultline's ONNX export: conv1, conv2, fc1, ...)."""
    import torch

    modules = [(n, m) for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    if names is None:
        if len(modules) != len(noises):
            raise ValueError(f"the model has {len(modules)} Linear/Conv2d layers, the fit {len(noises)}; pass names=")
        names = {n: layer for (n, _), layer in zip(modules, noises)}
    handles = []
    for module_name, module in modules:
        if module_name not in names:
            continue
        noise = noises[names[module_name]]
        if noise.exact:
            continue
        probs = torch.tensor(noise.probabilities, dtype=torch.float32)
        quants = torch.tensor(noise.quantiles, dtype=torch.float32)

        def hook(mod, inputs, output, noise=noise, probs=probs, quants=quants):
            if not mod.training:
                return output
            with torch.no_grad():
                y = output
                if mod.bias is not None:  # the trace is of the product, before the bias
                    shape = (1, -1) + (1,) * (output.dim() - 2)
                    y = output - mod.bias.view(shape)
                u = torch.rand_like(y).clamp(float(probs[0]), float(probs[-1]))
                k = torch.searchsorted(probs, u.reshape(-1)).clamp(1, len(probs) - 1).reshape(u.shape)
                p0, p1, q0, q1 = probs[k - 1], probs[k], quants[k - 1], quants[k]
                z = q0 + (u - p0) / (p1 - p0) * (q1 - q0)
                e = (noise.sigma_offset + noise.sigma_slope * y.abs()) * z
            return output + e

        handles.append(module.register_forward_hook(hook))
    return handles
