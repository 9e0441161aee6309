"""The small CNN the Python tests share (tests/python/make_torch_fixture.py trains it once):
two 3x3 convolutions with ReLU and max pooling, then two linear layers, in PyTorch."""
import torch
from torch import nn


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12 * 7 * 7, 48), nn.ReLU(), nn.Linear(48, 10))


def export(model, path):
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, input_names=["x"], output_names=["y"], opset_version=13,
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
