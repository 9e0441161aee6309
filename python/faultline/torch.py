"""PyTorch layers whose forward pass runs on a Faultline hardware description.

    import faultline.torch as ft
    model = MyCNN()                                   # any nn.Module with nn.Linear / nn.Conv2d
    ft.convert(model, "rram_crossbar", seed=1)        # those layers now run on the crossbar
    ...train with your own optimizer and data loader...
    ft.set_trial(model, 3)                            # evaluation: Monte Carlo trial 3

Each converted layer is a one-node graph of Faultline's NN engine (python/src/module.cpp,
HardwareLayer), so its forward values are the engine's own: the same bits as `faultline eval` of
the exported ONNX model on the same hardware, seed, trial and images, when the samples of a pass
are fed in order (tests/python/test_torch_layers.py checks this).

Programming follows Faultline's training (nn/train.h): in training mode every forward pass is a
step and programs the hardware with trial = step (fresh programming and read noise, keyed as in
evaluation); in evaluation mode the hardware is programmed once per trial (set_trial) and again
only when the weights change, and the samples of consecutive forward calls are numbered on from
the previous call (new_pass or set_trial starts again at sample 0).

Backward: "ste" (straight-through: the gradient of the exact product) or "secant" (each output's
gradient scaled by the frozen gain y_hw / y_exact clamped to [0, 1], 1 where the exact product is
below 1e-3 of its largest magnitude), as `faultline train --backward`.
"""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import Error, _faultline, hardware

__all__ = ["HardwareLinear", "HardwareConv2d", "convert", "set_trial", "new_pass", "calibrate", "counters", "hardware_layers"]


def _secant_gain(y_hw, y_exact):
    """g = clamp(y_hw / y_exact, 0, 1) where |y_exact| > 1e-3 max |y_exact|, else 1 (nn/ops_linear.cpp)."""
    tiny = 1e-3 * y_exact.abs().max()
    gain = torch.ones_like(y_exact)
    big = y_exact.abs() > tiny
    gain[big] = (y_hw[big] / y_exact[big]).clamp(0.0, 1.0)
    return gain


class _OnHardware(torch.autograd.Function):
    """Forward: the hardware's output. Backward: the exact operation's gradient, scaled by the
    secant gain when asked."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        y = layer._hardware_output(x)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight, bias if bias is not None else torch.empty(0), y)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, y_hw = ctx.saved_tensors
        layer = ctx.layer
        bias = bias if ctx.has_bias else None
        if layer.backward_mode == "secant":
            with torch.no_grad():
                hw_product = y_hw - layer._broadcast_bias(bias) if bias is not None else y_hw
                dy = dy * _secant_gain(hw_product, layer._exact(x, weight, None))
        # The exact operation's gradients, computed directly (no second forward pass).
        dx, dw, db = layer._gradients(x, weight, dy.contiguous(), ctx.needs_input_grad)
        return dx, dw, (db if bias is not None else None), None


class _HardwareModule(nn.Module):
    """What HardwareLinear and HardwareConv2d share: programming, sample numbering, counters."""

    def _setup(self, op_type, name, index, hw, seed, backward, threads, strides=(), pads=(), dilations=(), group=1):
        if backward not in ("ste", "secant"):
            raise Error(f"backward: must be ste or secant, got '{backward}'")
        self.hw = hardware(hw)
        self.layer_name = name
        self.index = int(index)
        self.seed = int(seed)
        self.backward_mode = backward
        self.threads = int(threads)
        self._layer = _faultline.HardwareLayer(op_type, name, self.index, self.hw, list(strides), list(pads), list(dilations), int(group))
        self.trial = 0           # evaluation: the Monte Carlo trial
        self.step = 0            # training: forward passes so far (the trial of each step)
        self._next_sample = 0    # evaluation: the first sample of the next forward call
        self._programmed = None  # (trial, weight versions) the hardware holds
        self._calibrating = False

    @property
    def unit(self):
        """The unit of the description this layer runs on ("" when it runs exact)."""
        return self._layer.unit

    @property
    def kind(self):
        return self._layer.kind

    def _versions(self):
        return tuple((p.data_ptr(), p._version) for p in (self.weight, self.bias) if p is not None)

    def _load_weights(self):
        w = self.weight.detach().to(torch.float32).cpu().contiguous().numpy()
        b = None if self.bias is None else self.bias.detach().to(torch.float32).cpu().contiguous().numpy()
        self._layer.set_weights(w, b)

    def _prepare(self):
        """Programs the hardware as Faultline's training and evaluation do; returns the first sample."""
        if self._calibrating:
            return 0
        if self.training:
            self._load_weights()
            self._layer.program(self.seed, self.step)
            self.step += 1
            self._programmed = None
            return 0
        state = (self.trial, self._versions())
        if self._programmed != state:
            self._load_weights()
            self._layer.program(self.seed, self.trial)
            self._programmed = state
            self._next_sample = 0
        first = self._next_sample
        return first

    def _hardware_output(self, x):
        if x.dtype != torch.float32:
            raise Error(f"layer '{self.layer_name}': input of dtype {x.dtype} (float32 expected)")
        first = self._prepare()
        flat = self._flatten(x.detach().cpu().contiguous())
        y = self._layer.forward(flat.numpy(), first, self.threads)
        if not self.training and not self._calibrating:
            self._next_sample = first + flat.shape[0]
        return self._unflatten(torch.from_numpy(np.ascontiguousarray(y)), x).to(x.device)

    def _flatten(self, x):
        return x

    def _unflatten(self, y, x):
        return y

    def forward(self, x):
        return _OnHardware.apply(x, self.weight, self.bias, self)

    def counters(self):
        """Hardware counters since the layer was last programmed."""
        return self._layer.counters()


class HardwareLinear(_HardwareModule):
    """nn.Linear on hardware (a Gemm layer in Faultline's terms)."""

    def __init__(self, linear, hw, name="linear", index=0, seed=1, backward="ste", threads=1):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise Error(f"HardwareLinear: expected nn.Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self._setup("Gemm", name, index, hw, seed, backward, threads)

    def _flatten(self, x):
        return x.reshape(-1, self.in_features)

    def _unflatten(self, y, x):
        return y.reshape(*x.shape[:-1], self.out_features)

    def _exact(self, x, w, b):
        return F.linear(x, w, b)

    def _gradients(self, x, w, dy, need):
        dy2 = dy.reshape(-1, self.out_features)
        dx = dy @ w if need[0] else None
        dw = dy2.t() @ x.reshape(-1, self.in_features) if need[1] else None
        db = dy2.sum(0) if need[2] else None
        return dx, dw, db

    def _broadcast_bias(self, b):
        return b

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, hw={self.hw.name}, unit={self.unit or 'exact'}"


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class HardwareConv2d(_HardwareModule):
    """nn.Conv2d on hardware (a Conv layer; zero padding only)."""

    def __init__(self, conv, hw, name="conv", index=0, seed=1, backward="ste", threads=1):
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise Error(f"HardwareConv2d: expected nn.Conv2d, got {type(conv).__name__}")
        if conv.padding_mode != "zeros":
            raise Error(f"layer '{name}': padding_mode '{conv.padding_mode}' is not supported (zeros only)")
        if isinstance(conv.padding, str):
            raise Error(f"layer '{name}': padding '{conv.padding}' is not supported (give the pads as numbers)")
        self.weight = conv.weight
        self.bias = conv.bias
        self.stride, self.padding, self.dilation, self.groups = _pair(conv.stride), _pair(conv.padding), _pair(conv.dilation), conv.groups
        pads = [self.padding[0], self.padding[1], self.padding[0], self.padding[1]]
        self._setup("Conv", name, index, hw, seed, backward, threads, self.stride, pads, self.dilation, self.groups)

    def _exact(self, x, w, b):
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def _gradients(self, x, w, dy, need):
        # ATen's own convolution backward (what autograd runs for F.conv2d).
        dx, dw, db = torch.ops.aten.convolution_backward(dy, x, w, [w.shape[0]], list(self.stride), list(self.padding),
                                                         list(self.dilation), False, [0, 0], self.groups,
                                                         [bool(need[0]), bool(need[1]), bool(need[2])])
        return dx, dw, db

    def _broadcast_bias(self, b):
        return b.view(1, -1, 1, 1)

    def extra_repr(self):
        return f"{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, kernel={tuple(self.weight.shape[2:])}, hw={self.hw.name}, " \
               f"unit={self.unit or 'exact'}"


def hardware_layers(model):
    """The model's hardware layers in order (name, module)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _HardwareModule)]


def convert(model, hw, seed=1, backward="ste", threads=1, names=None):
    """Replaces every nn.Linear and nn.Conv2d of `model` (in place; also returned) by its hardware
    layer on `hw` (a preset name, YAML file, dict or HardwareConfig). Layers are numbered in
    module order (their index keys the hardware's random draws, as the layer's position in the
    exported ONNX graph does) and named by their module path, or by names[module path] (the names
    the description's mapping globs see, e.g. the exported ONNX node names)."""
    config = hardware(hw)
    names = names or {}
    index = 0
    targets = [(n, m) for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]
    for path, module in targets:
        name = names.get(path, path)
        cls = HardwareLinear if isinstance(module, nn.Linear) else HardwareConv2d
        replacement = cls(module, config, name=name, index=index, seed=seed, backward=backward, threads=threads)
        replacement.train(module.training)
        index += 1
        parent = model
        *parents, last = path.split(".") if path else [""]
        for p in parents:
            parent = getattr(parent, p)
        if path == "":
            raise Error("convert: the model itself is a single layer; wrap it in nn.Sequential")
        setattr(parent, last, replacement)
    if index == 0:
        raise Error("convert: the model has no nn.Linear or nn.Conv2d layer")
    return model


def set_trial(model, trial):
    """Evaluation: programs every hardware layer for Monte Carlo trial `trial` at its next forward
    pass, and numbers samples from 0 again."""
    for _, layer in hardware_layers(model):
        layer.trial = int(trial)
        layer._programmed = None


def new_pass(model):
    """Evaluation: the next forward call starts a new pass over the data (samples from 0), on the
    same programmed hardware."""
    for _, layer in hardware_layers(model):
        layer._next_sample = 0


@torch.no_grad()
def calibrate(model, images):
    """Activation ranges for kinds that quantize with static ranges (e.g. vta): runs `images` (the
    first ones of the data, as Faultline calibrates on its first 256) through the model with exact
    layers, recording each layer's max |x| and max |x W^T + b|."""
    layers = hardware_layers(model)
    was_training = model.training
    model.eval()
    for _, layer in layers:
        layer._load_weights()
        layer._layer.start_calibration()
        layer._calibrating = True
    try:
        model(images)
    finally:
        for _, layer in layers:
            layer._calibrating = False
            layer._layer.finish_calibration()
            layer._programmed = None
        model.train(was_training)


def counters(model):
    """{layer name: hardware counters} of every hardware layer."""
    return {layer.layer_name: layer.counters() for _, layer in hardware_layers(model)}
