"""Trains the MLPs of `faultline train --arch mlp|butterfly_mlp|monarch_mlp --width N` in PyTorch
(Debian's python3-torch) on Fashion-MNIST and exports them as ONNX that Faultline loads.

The structured layers are written with the operators Faultline's own builder uses (nn/train.cpp),
so the exported graph is Reshape, Transpose and batched MatMul with constant 3-D weights:

- butterfly (Dao et al., arXiv 1903.05895): log2(n) stages k = 2, 4, ..., n; stage k pairs elements
  j and j + k/2 of every block of k with a 2x2 matrix (n/2 of them, a [n/2, 2, 2] weight);
- Monarch (Dao et al., arXiv 2204.00595): M = P L P^T R, R = b1 blocks of b2 x b2, L = b2 blocks of
  b1 x b1, n = b1 * b2 with b1 the largest divisor of n not above sqrt(n).

Writes OUT/ARCH-WIDTH.onnx, OUT/images.npy (the first --check test images) and
OUT/ARCH-WIDTH.logits.npy (PyTorch's logits for them), and prints the test accuracy.

Usage: /usr/bin/python3 butterfly_pytorch.py --arch butterfly_mlp --width 1024 --epochs 10 --out DIR
"""
import argparse
import gzip
import math
import os
import sys

import numpy as np
import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(DATA, prefix + "-images-idx3-ubyte.gz")).astype(np.float32) / 255.0  # as nn/dataset.cpp
    labels = read_idx(os.path.join(DATA, prefix + "-labels-idx1-ubyte.gz")).astype(np.int64)
    return images.reshape(-1, 1, 28, 28), labels


class Butterfly(nn.Module):
    def __init__(self, n):
        super().__init__()
        if n < 2 or n & (n - 1):
            raise SystemExit("butterfly layers need a power-of-two width, got %d" % n)
        self.n = n
        stages = int(math.log2(n))
        # Variance-preserving 2x2 factors (fan-in 2), He's gain on the last stage (a ReLU follows).
        self.factors = nn.ParameterList(
            [nn.Parameter((torch.rand(n // 2, 2, 2) * 2 - 1) * math.sqrt((6.0 if s == stages - 1 else 3.0) / 2)) for s in range(stages)])
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        n = self.n
        k = 2
        for w in self.factors:
            x = x.reshape(-1, n // k, 2, k // 2).transpose(2, 3).reshape(-1, n // 2, 1, 2)
            x = torch.matmul(x, w)
            x = x.reshape(-1, n // k, k // 2, 2).transpose(2, 3).reshape(-1, n)
            k *= 2
        return x + self.bias


class Monarch(nn.Module):
    def __init__(self, n):
        super().__init__()
        b1 = max(d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0)
        b2 = n // b1
        self.n, self.b1, self.b2 = n, b1, b2
        self.r = nn.Parameter((torch.rand(b1, b2, b2) * 2 - 1) * math.sqrt(3.0 / b2))
        self.l = nn.Parameter((torch.rand(b2, b1, b1) * 2 - 1) * math.sqrt(6.0 / b1))
        self.bias = nn.Parameter(torch.zeros(n))

    def forward(self, x):
        n, b1, b2 = self.n, self.b1, self.b2
        x = torch.matmul(x.reshape(-1, b1, 1, b2), self.r)
        x = x.reshape(-1, b1, b2).transpose(1, 2).reshape(-1, b2, 1, b1)
        x = torch.matmul(x, self.l)
        x = x.reshape(-1, b2, b1).transpose(1, 2).reshape(-1, n)
        return x + self.bias


def make(arch, width):
    hidden = {"mlp": lambda: nn.Linear(width, width), "butterfly_mlp": lambda: Butterfly(width), "monarch_mlp": lambda: Monarch(width)}
    if arch not in hidden:
        raise SystemExit("--arch: mlp, butterfly_mlp or monarch_mlp")
    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), hidden[arch](), nn.ReLU(), hidden[arch](), nn.ReLU(), nn.Linear(width, 10))


def hidden_parameters(model):
    """Weights of the two hidden width x width layers (biases excluded)."""
    return sum(p.numel() for name, p in model.named_parameters() if name.split(".")[0] in ("3", "5") and not name.endswith("bias"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="butterfly_mlp")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images (0: all)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", type=int, default=256, help="test images whose logits are saved for the comparison")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    x, y = load("train")
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    xt, yt = load("test")
    model = make(a.arch, a.width)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    steps = max(1, a.epochs * math.ceil(len(x) / a.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)  # cosine to 0, as faultline train
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(a.epochs):
        order = torch.randperm(len(xs))
        model.train()
        for i in range(0, len(xs), a.batch_size):
            idx = order[i:i + a.batch_size]
            loss = nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(xt[i:i + 1000])) for i in range(0, len(xt), 1000)])
        accuracy = (logits.argmax(1).numpy() == yt).mean() * 100
    name = "%s-%d" % (a.arch, a.width)
    path = os.path.join(a.out, name + ".onnx")
    torch.onnx.export(model, torch.from_numpy(xt[:1]), path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    np.save(os.path.join(a.out, "images.npy"), xt[:a.check])
    np.save(os.path.join(a.out, name + ".logits.npy"), logits[:a.check].numpy())
    print("%s: %d hidden-layer weights (dense %d), test accuracy %.2f %% (PyTorch), wrote %s" %
          (name, hidden_parameters(model), 2 * a.width * a.width, accuracy, path))


if __name__ == "__main__":
    sys.exit(main())
