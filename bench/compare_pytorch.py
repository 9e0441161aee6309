"""Runs the same LeNet-5 (an ONNX file written by `faultline train`) on the 10k Fashion-MNIST test
images in Faultline and in PyTorch, with the same thread count, and prints both throughputs and
their ratio. PyTorch cannot read ONNX, so the script rebuilds the network in torch.nn and copies
the ONNX initializers into it; both accuracies are printed so that a mismatch shows.

Usage: /usr/bin/python3 bench/compare_pytorch.py FAULTLINE_BINARY MODEL.onnx [--threads N] [--batch B,B,...]
"""
import argparse
import gzip
import os
import re
import subprocess
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("faultline")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    # PyTorch's throughput depends on the batch (on this machine LeNet-5 runs 4x faster in batches of
    # 64 than of 1000): it gets the best of these.
    parser.add_argument("--batch", default="64,256,1000", help="comma-separated batch sizes; PyTorch's best counts")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(args.model).graph.initializer}
    net = lenet5().eval()
    layers = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    names = ["conv1", "conv2", "fc1", "fc2", "fc3"]
    with torch.no_grad():
        for layer, name in zip(layers, names):
            layer.weight.copy_(torch.from_numpy(weights[name + ".weight"].copy()))
            layer.bias.copy_(torch.from_numpy(weights[name + ".bias"].copy()))

    images = torch.from_numpy(read_idx(DATA + "/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(read_idx(DATA + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    torch.set_num_threads(args.threads)

    # PyTorch 1.13 (Debian) runs no_grad forwards several times slower until one backward pass
    # has run in the process (bench/compare_pytorch_cnn.py): warm it up with one.
    net(images[:64]).sum().backward()
    best_torch = float("inf")
    best_batch = None
    for _ in range(args.repeat):
        for batch in [int(b) for b in args.batch.split(",")]:
            with torch.no_grad():
                start = time.perf_counter()
                predictions = torch.cat([net(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
                seconds = time.perf_counter() - start
            if seconds < best_torch:
                best_torch, best_batch = seconds, batch
    torch_accuracy = (predictions == labels).float().mean().item()

    best_faultline, faultline_accuracy = float("inf"), None
    for _ in range(args.repeat):
        # Plain inference: no per-layer error measurement (it recomputes an exact product per layer).
        out = subprocess.run([args.faultline, "eval", "--model", args.model, "--threads", str(args.threads), "--layer-errors", "false"],
                             check=True, capture_output=True, text=True).stdout
        seconds = float(re.search(r"^([0-9.]+) s, ", out, re.M).group(1))
        faultline_accuracy = float(re.search(r"^hardware \S+: accuracy ([0-9.]+) %", out, re.M).group(1)) / 100
        best_faultline = min(best_faultline, seconds)

    n = len(images)
    print(f"threads {args.threads}, 10k Fashion-MNIST test images, LeNet-5, best of {args.repeat}")
    print(f"PyTorch {torch.__version__} (batch {best_batch}): {n / best_torch:10.0f} images/s  ({best_torch:.3f} s)  accuracy {100 * torch_accuracy:.2f} %")
    print(f"Faultline (ideal):            {n / best_faultline:10.0f} images/s  ({best_faultline:.3f} s)  accuracy {100 * faultline_accuracy:.2f} %")
    print(f"ratio Faultline / PyTorch throughput: {best_torch / best_faultline:.2f}")


if __name__ == "__main__":
    main()
