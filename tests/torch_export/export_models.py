"""Exports small CNNs and MLPs with torch.onnx.export at opsets 11 to 17 and stores, next to each
model, an input batch and PyTorch's output for it. The C++ test loads every model with Faultline
and compares. Run with Debian's interpreter (/usr/bin/python3) and python3-torch.

Usage: export_models.py OUTPUT_DIR
"""
import os
import sys

import numpy as np
import torch
from torch import nn


class ViewMlp(nn.Module):
    """x.view(x.size(0), -1) exports as Shape/Gather/Unsqueeze/Concat/Reshape."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


class BnCnn(nn.Module):
    """Conv + BatchNorm + AvgPool + Dropout + Sigmoid/Tanh/LeakyReLU."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 12, 3, stride=2, dilation=1)
        self.bn2 = nn.BatchNorm2d(12)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(12 * 6 * 6, 10)

    def forward(self, x):
        x = torch.nn.functional.leaky_relu(self.bn1(self.conv1(x)), 0.1)
        x = nn.functional.avg_pool2d(x, 2)
        x = torch.tanh(self.bn2(self.conv2(x)))
        x = self.drop(torch.flatten(x, 1))
        return torch.sigmoid(self.fc(x))


class DepthwiseNet(nn.Module):
    """Depthwise-separable convolutions, explicit padding, ReLU6 (Clip), two branches joined with
    torch.cat, global average pooling, and a bias-free MatMul head."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 1, 2))
        self.stem = nn.Conv2d(1, 8, 3)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.side = nn.Conv2d(8, 4, 3, padding=2, dilation=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Parameter(torch.randn(20, 10) * 0.1)

    def forward(self, x):
        x = nn.functional.relu6(self.stem(self.pad(x)))
        a = nn.functional.relu6(self.pw(self.dw(x)))
        b = torch.relu(self.side(x))
        x = torch.cat([a, b], dim=1)
        x = nn.functional.max_pool2d(x, 3, stride=2, padding=1)
        x = self.pool(x).squeeze(-1).squeeze(-1)
        return x @ self.head


class SequenceHead(nn.Module):
    """Batched MatMul with a constant weight on 3-D input, Transpose, Sub/Div with broadcasting."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(28, 16, bias=False)
        self.out = nn.Linear(16 * 28, 10)

    def forward(self, x):
        x = (x - 0.5) / 0.25
        x = x.squeeze(1).transpose(1, 2)          # [N, 28, 28] with rows as the sequence
        x = self.proj(x)                           # MatMul on a 3-D input
        return self.out(x.reshape(x.shape[0], -1))


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    models = {"view_mlp": ViewMlp(), "bn_cnn": BnCnn(), "depthwise": DepthwiseNet(), "sequence": SequenceHead()}
    x = torch.rand(3, 1, 28, 28)
    manifest = []
    for name, model in models.items():
        model.eval()
        # Give BatchNorm non-trivial statistics.
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        with torch.no_grad():
            y = model(x).numpy()
        for opset in range(11, 18):
            stem = f"{name}_opset{opset}"
            torch.onnx.export(model, x, os.path.join(out_dir, stem + ".onnx"), opset_version=opset,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            manifest.append(stem)
        np.save(os.path.join(out_dir, name + "_input.npy"), x.numpy())
        np.save(os.path.join(out_dir, name + "_expected.npy"), y)
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
