"""One training step of a CNN in PyTorch, for the C++ test torch_train_step_test: it exports the
network (Conv, BatchNorm, residual Add, average pooling, a MatMul head) to ONNX, then takes one
plain SGD step in training mode on a fixed batch and stores, per ONNX initializer, PyTorch's
gradient of the mean cross-entropy. Faultline fine-tunes the exported file one step on the same
batch and must find the same gradients. Run with Debian's /usr/bin/python3 and python3-torch.

Usage: train_step.py OUTPUT_DIR
"""
import os
import sys

import numpy as np
import torch
from torch import nn


class ResidualCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.pool = nn.AvgPool2d(2)
        # The head as an explicit MatMul with a weight parameter and a bias Add.
        self.head_weight = nn.Parameter(torch.randn(6 * 14 * 14, 10) * 0.02)
        self.head_bias = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        # BatchNorm after the ReLU: PyTorch's exporter would fold a BatchNorm that follows a Conv
        # directly into the Conv's weights (eval-mode export).
        a = self.bn1(torch.relu(self.conv1(x)))
        b = self.bn2(torch.relu(self.conv2(a)))
        y = self.pool(a + b)
        return torch.matmul(torch.flatten(y, 1), self.head_weight) + self.head_bias


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = ResidualCnn()
    # Distinct BatchNorm parameters: the exporter shares initializers that are equal (fresh
    # BatchNorms) through Identity nodes, which Faultline folds, leaving them frozen.
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.8, 1.2)
    x = torch.rand(8, 1, 28, 28)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    model.eval()
    torch.onnx.export(model, x, os.path.join(out, "model.onnx"), opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    model.train()
    loss = nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "labels.npy"), labels.numpy().astype(np.int64))
    # Name each gradient after the ONNX initializer holding that parameter (found by value).
    import onnx
    from onnx import numpy_helper
    initializers = {t.name: numpy_helper.to_array(t) for t in onnx.load(os.path.join(out, "model.onnx")).graph.initializer}
    manifest = []
    for pname, p in model.named_parameters():
        value = p.detach().numpy()
        match = [n for n, v in initializers.items() if v.shape == value.shape and np.array_equal(v, value)]
        if len(match) != 1:
            raise SystemExit(f"cannot find the ONNX initializer of {pname}")
        np.save(os.path.join(out, f"grad_{len(manifest)}.npy"), p.grad.numpy())
        manifest.append(f"{match[0]} grad_{len(manifest)}.npy")
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
