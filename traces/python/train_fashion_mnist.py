"""Trains a Fashion-MNIST classifier in PyTorch with the noise fitted from a Faultline trace, and
compares it with a plainly trained one under that noise.

    faultline trace --model lenet5.onnx --hw rram_crossbar --out trace/
    /usr/bin/python3 traces/python/train_fashion_mnist.py --fit trace/ --arch lenet5 --epochs 3

Both networks are evaluated on the test set with the fitted noise on (several draws) and off.
Uses Debian's python3-torch and the dataset-fashion-mnist package (IDX files).
"""
import argparse
import gzip
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultline_noise  # noqa: E402


def load_idx(folder, split):
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    with gzip.open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def build(arch):
    # The shapes of faultline's own reference networks (nn/train.cpp), so that the fitted layers line up.
    if arch == "mlp":
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                   torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    return torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(6, 16, 5),
                               torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
                               torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))


def accuracy(model, images, labels, noisy, draws):
    model.train(noisy)  # the hooks inject noise in training mode only
    results = []
    with torch.no_grad():
        for _ in range(draws if noisy else 1):
            correct = 0
            for i in range(0, len(images), 1000):
                correct += (model(images[i:i + 1000]).argmax(1) == labels[i:i + 1000]).sum().item()
            results.append(correct / len(images))
    return float(np.mean(results)), float(np.std(results))


def train(arch, noises, images, labels, epochs, seed, with_noise):
    torch.manual_seed(seed)
    model = build(arch)
    handles = faultline_noise.attach(model, noises) if with_noise else []
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(images))
        for i in range(0, len(images), 128):
            idx = order[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(images[idx]), labels[idx]).backward()
            opt.step()
    for h in handles:
        h.remove()
    faultline_noise.attach(model, noises)  # evaluation under the noise uses the same hooks
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", required=True, help="a trace folder (with noise_fit.json) or a noise_fit.json")
    ap.add_argument("--arch", default="lenet5", choices=["mlp", "lenet5"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images (0: all)")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images (0: all)")
    ap.add_argument("--draws", type=int, default=5, help="noise draws when evaluating under noise")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    noises = faultline_noise.load_fit(a.fit)
    x, y = load_idx(a.data, "train")
    tx, ty = load_idx(a.data, "test")
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    if a.test_limit:
        tx, ty = tx[:a.test_limit], ty[:a.test_limit]
    print(f"fitted noise of {len(noises)} layers from {a.fit}")
    for name, with_noise in (("plain", False), ("noise-aware", True)):
        model = train(a.arch, noises, x, y, a.epochs, a.seed, with_noise)
        clean, _ = accuracy(model, tx, ty, False, 1)
        noisy, spread = accuracy(model, tx, ty, True, a.draws)
        print(f"{name:12s} clean {100 * clean:6.2f} %   under the fitted noise {100 * noisy:6.2f} % ± {100 * spread:.2f} ({a.draws} draws)")


if __name__ == "__main__":
    main()
