"""Faultline from Python: neural networks on unreliable and analog hardware.

The same libraries as the ``faultline`` command line (python/src/module.cpp binds them):

>>> import faultline
>>> model = faultline.load_model("lenet5.onnx")
>>> r = faultline.evaluate(model, "rram_crossbar", trials=5, seed=1)
>>> r["accuracy"]["mean"], r["accuracy"]["ci95"]
>>> print(r.table)                          # the per-layer table eval prints

Results are the JSON documents the command line writes, as Python objects. Errors raise
``faultline.Error`` (a ValueError) with the command line's one-line message. Long calls release
the GIL; ``threads`` only changes the speed, never the bits (DESIGN.md, reproducibility).
PyTorch layers on any hardware kind: ``faultline.torch``.
"""
import json
import os

from . import _faultline
from ._faultline import Dataset, Error, HardwareConfig, Model

__all__ = [
    "Error", "Dataset", "HardwareConfig", "Model", "StudyResult", "Substrate",
    "hardware", "load_model", "load_data", "dataset", "evaluate", "infer", "sweep", "walking_noise",
    "trace", "hw_kinds", "hw_presets", "substrate",
]


def _threads(threads):
    return (os.cpu_count() or 1) if threads is None else int(threads)


def _overrides(overrides):
    """{"units.xbar.adc_bits": 6} or ["units.xbar.adc_bits=6"] -> ["units.xbar.adc_bits=6"]."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in overrides.items()]
    return [str(o) for o in overrides]


def hardware(spec="ideal", overrides=None):
    """A validated hardware description.

    spec: a preset name ("rram_crossbar", see hw_presets()), a YAML file, a dict with the YAML's
    structure (hwcfg/README.md), or a HardwareConfig (returned as is when there are no overrides).
    overrides: {"units.xbar.adc_bits": 6} or ["units.xbar.adc_bits=6"], as eval's --set.
    """
    if isinstance(spec, HardwareConfig):
        if overrides:
            raise Error("hardware: overrides apply to a name, file or dict, not to a loaded HardwareConfig")
        return spec
    if isinstance(spec, dict):
        # JSON is YAML: the dict goes through the same parser and validation as a file.
        return _faultline.load_hardware(json.dumps(spec), _overrides(overrides), True, "<dict>")
    if isinstance(spec, (str, os.PathLike)):
        return _faultline.load_hardware(os.fspath(spec), _overrides(overrides), False, "")
    raise Error(f"hardware: expected a preset name, a file, a dict or a HardwareConfig, got {type(spec).__name__}")


def load_model(path):
    """An ONNX model (a classifier for evaluate: images in, class scores out)."""
    if isinstance(path, Model):
        return path
    return Model(os.fspath(path))


def load_data(spec="fashion-mnist", train=False, layout="nchw", scale=None, normalize=None):
    """A dataset: "fashion-mnist", or a folder of MNIST-format IDX files, CIFAR-10 binary batches
    (data_batch_N.bin, test_batch.bin) or images.npy + labels.npy (or train/ and test/ holding them).

    layout: "nchw" or "nhwc" (images.npy); scale: "1/255" or a number (default 1/255 for bytes, 1
    for floats); normalize: (means, stds) per channel or "m,...:s,...", applied as (x - m) / s.
    """
    if isinstance(normalize, (tuple, list)):
        means, stds = normalize
        normalize = ",".join(map(str, means)) + ":" + ",".join(map(str, stds))
    return _faultline.load_data(os.fspath(spec), bool(train), layout, "" if scale is None else str(scale),
                                "" if normalize is None else normalize)


def dataset(images, labels, name="arrays"):
    """A dataset from arrays: images N x C x H x W (or N x H x W) as float32, labels 0..255."""
    return _faultline.dataset_from_arrays(images, labels, name)


def _data(data):
    return data if isinstance(data, Dataset) else load_data(data)


class StudyResult(dict):
    """eval's JSON as a dict; ``table`` is the terminal table (str(result) prints it)."""

    def __init__(self, document, table):
        super().__init__(document)
        self.table = table

    def __str__(self):
        return self.table


def evaluate(model, hw="ideal", data="fashion-mnist", trials=1, seed=1, level="functional", limit=0, threads=None,
             layer_errors=True, overrides=None, verbose=False):
    """Monte Carlo accuracy of `model` on `hw` (as `faultline eval`): returns eval's JSON document
    (accuracy mean/std/ci95/trials, class_accuracy, per-layer rms error, SNR, counters).

    level: "functional", or "cycle" / "rtl" (SystemC elaborates once per process: one such call per
    Python process). verbose: the table lists every counter.
    """
    document, table = _faultline.evaluate(load_model(model), hardware(hw, overrides), _data(data), int(trials), int(seed), level,
                                          int(limit), _threads(threads), bool(layer_errors), bool(verbose))
    return StudyResult(json.loads(document), table)


def infer(model, inputs, hw="ideal", seed=1, trial=0, overrides=None):
    """Runs the model on its inputs (one array per model input; one array for a one-input model)
    with `hw` programmed for Monte Carlo trial `trial`; returns one array per output."""
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    return _faultline.Model.infer(load_model(model), list(inputs), hardware(hw, overrides), int(seed), int(trial))


def _axes(axes):
    if axes is None:
        return []
    if isinstance(axes, dict):
        return [f"{k}={v}" for k, v in axes.items()]
    return [str(a) for a in axes]


def sweep(model, axes, data="fashion-mnist", hw="ideal", overrides=None, trials=5, seed=1, limit=0, threads=None, out=None,
          on_row=None):
    """A grid sweep over hardware fields (as `faultline sweep --sweep`): axes {"units.xbar.adc_bits":
    "4:8", "units.xbar.read_noise": "log:1e-3:1e-1:5"}; the first axis varies slowest. With `out`
    (a prefix), rows are appended to PREFIX.jsonl as they finish and a rerun resumes from it;
    PREFIX.csv and PREFIX.json are written at the end. on_row(dict) is called for each row.
    Returns the sweep's JSON document."""
    hw_spec = _spec_for_sweep(hw)
    return json.loads(_faultline.sweep(load_model(model), _data(data), hw_spec, _overrides(overrides), _axes(axes), "",
                                       "log:1e-3:1e2:25", "*", 0.05, 12, int(trials), int(seed), int(limit), _threads(threads),
                                       "" if out is None else os.fspath(out), on_row))


def walking_noise(model, mode="additive", sigma="log:1e-3:1e2:25", layers="*", data="fashion-mnist", hw="ideal", overrides=None,
                  tolerance=0.05, max_bisections=12, trials=5, seed=1, limit=0, threads=None, out=None, on_row=None):
    """Walking Noise (Borras, Klein, Fröning, arXiv 2212.10430; as `faultline sweep --walking`):
    noise of `mode` ("additive", "multiplicative", "combined") on one layer's output at a time over
    the sigma grid, then bisection for each layer's midpoint (accuracy halfway between clean and
    chance). Resumable through `out` as sweep(). Returns the sweep's JSON (rows, midpoints; with
    trials >= 2 each midpoint has its 95 % bootstrap interval over the trials, `midpoint_ci`, null
    on a side that is open beyond the evaluated sigmas)."""
    if mode not in ("additive", "multiplicative", "combined"):
        raise Error(f"walking: must be additive, multiplicative or combined, got '{mode}'")
    return json.loads(_faultline.sweep(load_model(model), _data(data), _spec_for_sweep(hw), _overrides(overrides), [], mode, str(sigma),
                                       layers, float(tolerance), int(max_bisections), int(trials), int(seed), int(limit),
                                       _threads(threads), "" if out is None else os.fspath(out), on_row))


def _spec_for_sweep(hw):
    # A sweep re-reads its base description for every point (with the point's overrides).
    if isinstance(hw, (str, os.PathLike)):
        return os.fspath(hw)
    raise Error("sweep: hw must be a preset name or a YAML file (each point re-reads it with its overrides)")


def trace(model, hw, out, data="fashion-mnist", limit=1000, max_samples=4096, seed=1, threads=None, fit=True, fit_shape="quantiles",
          overrides=None):
    """Records each layer's hardware and exact outputs (as `faultline trace`) into the folder `out`
    (trace.json, LAYER.{ideal,hardware}.npy; traces/README.md), and with `fit` the fitted noise
    model (noise_from_trace.yaml, noise_fit.json). Returns {accuracy, images, folder, fits}."""
    out = os.fspath(out)
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise Error(f"out: the folder '{parent}' does not exist")
    os.makedirs(out, exist_ok=True)
    return json.loads(_faultline.trace(load_model(model), hardware(hw, overrides), _data(data), out, int(limit), int(max_samples), int(seed),
                                       _threads(threads), bool(fit), fit_shape))


def hw_kinds():
    """Every registered hardware kind: name, doc, params (name, type, default, range or choices,
    unit, doc with its source), timing/energy/schedule parameters, capabilities."""
    return _faultline.hw_kinds()


def hw_presets():
    """The shipped hardware descriptions (hwcfg/NAME.yaml) by name."""
    return _faultline.hw_presets()


class Substrate:
    """One piece of hardware of a kind, to probe from a notebook: program(weights) once per trial
    (programming noise, stuck cells, quantization), then multiply(x) (read noise, ADC, ordering)."""

    def __init__(self, handle):
        self._handle = handle

    def program(self, weights, seed=1, trial=0, name="layer", op_type="Gemm", index=0, input_range=None, output_range=None):
        """Stores weights (outputs x inputs). input_range/output_range: calibrated max |x| and
        max |x W^T| for kinds that quantize with static ranges."""
        self._handle.program(weights, name, op_type, int(index), int(seed), int(trial), input_range, output_range)
        return self

    def multiply(self, x, first_row=0, rows_per_sample=1, threads=1):
        """y = x W^T as the hardware computes it, one input vector per row of x; first_row is x's
        first row's index in the pass (it keys the read noise)."""
        return self._handle.multiply(x, int(first_row), int(rows_per_sample), int(threads))

    def counters(self):
        """The hardware counters since the last program()."""
        return self._handle.counters()

    @property
    def kind(self):
        return self._handle.kind

    @property
    def shape(self):
        return (self._handle.outputs, self._handle.inputs)


def substrate(kind, params=None, unit=None, layer=""):
    """A Substrate of `kind` with parameters {name: value} (defaults for the rest), or, when `kind`
    is a hardware description (name, file, dict or HardwareConfig), the substrate of its unit
    `unit` (with its schedule knobs for `layer`)."""
    if unit is not None:
        if params:
            raise Error("substrate: give params or a description's unit, not both")
        return Substrate(_faultline.substrate_for_unit(hardware(kind), unit, layer))
    return Substrate(_faultline.create_substrate(kind, dict(params or {})))
