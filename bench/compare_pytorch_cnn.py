"""Faultline against PyTorch on CNNs that PyTorch exports: inference and training on the same cores.

Builds a residual CNN in torch.nn (3x3 convolutions, WIDTH, 2 WIDTH and 4 WIDTH channels, a residual
add per stage, stride-2 downsampling, global average pooling, one Linear), exports it with
torch.onnx.export, and times, each pair back to back and best of REPEAT:
  - inference on the 10k Fashion-MNIST test images: PyTorch's forward (no_grad, the best of
    batches of 64, 256 and 1000, the loop alone, after a warm-up backward pass) against
    `faultline eval --layer-errors false` (its own evaluation time), and
    both as whole processes (interpreter / program start, model and data loading included);
  - training: one epoch of Adam (lr 1e-3, constant) on the first TRAIN_IMAGES training images in
    batches of BATCH: PyTorch's training loop alone against the whole `faultline train --model`
    process (which also loads the data and writes the ONNX file), so the ratio favours PyTorch,
    and Faultline's marginal time (a run on twice the images minus the run).
Both accuracies are printed (the same untrained weights give the same predictions, so a mismatch in
the engine shows). --arch lenet5 runs the same on LeNet-5 (bench/compare_pytorch.py's network).

Usage: /usr/bin/python3 bench/compare_pytorch_cnn.py FAULTLINE [--arch residual|lenet5] [--width 16] [--threads N]
       [--train-images 6400] [--batch 64] [--repeat 3] [--work DIR]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_pytorch import DATA, lenet5, read_idx  # noqa: E402 (the same reader and LeNet-5)


class Residual(nn.Module):
    """x + conv(relu(conv(x))), then ReLU (a ResNet basic block without batch norm)."""

    def __init__(self, channels):
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1)
        self.b = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.b(torch.relu(self.a(x))))


def build(arch, width):
    if arch == "lenet5":
        return lenet5()
    return residual_cnn(width)


def residual_cnn(width):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), Residual(width),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(), Residual(2 * width),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU(), Residual(4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 10))


# The whole-process PyTorch inference: what a user's script does (import, build, load, run).
WHOLE_PROCESS = """
import sys, time, gzip, numpy as np, torch
sys.path.insert(0, {here!r})
from compare_pytorch_cnn import build, read_idx, DATA
torch.set_num_threads({threads})
net = build({arch!r}, {width}).eval()
net.load_state_dict(torch.load({weights!r}))
x = torch.from_numpy(read_idx(DATA + "/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
net(x[:64]).sum().backward()  # see the warm-up in main()
with torch.no_grad():
    p = torch.cat([net(x[i:i + 64]).argmax(1) for i in range(0, len(x), 64)])
print(int(p.sum()))
"""


def run_seconds(command):
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("faultline")
    parser.add_argument("--arch", choices=["residual", "lenet5"], default="residual")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--train-images", type=int, default=6400)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="faultline-cnn-")
    os.makedirs(work, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    net = build(args.arch, args.width).eval()
    stem = f"residual_cnn{args.width}" if args.arch == "residual" else "lenet5"
    model = os.path.join(work, stem + ".onnx")
    weights = os.path.join(work, stem + ".pt")
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), model, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    torch.save(net.state_dict(), weights)
    # MACs per image from the layer shapes, for a GFLOP/s figure.
    macs = 0
    x = torch.zeros(1, 1, 28, 28)
    hooks = []

    def count(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            macs += output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(count))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()

    images = torch.from_numpy(read_idx(DATA + "/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(read_idx(DATA + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    n = len(images)

    # PyTorch 1.13 (Debian) runs no_grad forwards about 9x slower until one backward pass has run
    # in the process (measured here: 1.24 s against 0.14 s for 1280 images): warm it up with one,
    # and give it the best of three batch sizes, so that the comparison is with its best.
    net(images[:64]).sum().backward()
    torch_s = fl_s = torch_whole = fl_whole = float("inf")
    here = os.path.dirname(os.path.abspath(__file__))
    script = WHOLE_PROCESS.format(here=here, threads=args.threads, arch=args.arch, width=args.width, weights=weights)
    fl_eval = [args.faultline, "eval", "--model", model, "--threads", str(args.threads), "--layer-errors", "false"]
    for _ in range(args.repeat):
        for batch in (64, 256, 1000):
            with torch.no_grad():
                start = time.perf_counter()
                predictions = torch.cat([net(images[i:i + batch]).argmax(1) for i in range(0, n, batch)])
                torch_s = min(torch_s, time.perf_counter() - start)
        wall, out = run_seconds(fl_eval)
        fl_whole = min(fl_whole, wall)
        fl_s = min(fl_s, float(re.search(r"^([0-9.]+) s, ", out, re.M).group(1)))
        fl_accuracy = float(re.search(r"^hardware \S+: accuracy ([0-9.]+) %", out, re.M).group(1))
        torch_whole = min(torch_whole, run_seconds([sys.executable, "-c", script])[0])
    torch_accuracy = 100 * (predictions == labels).float().mean().item()

    # Training: the same model, batch size, optimizer and images (the order of the images differs).
    train_x = torch.from_numpy(read_idx(DATA + "/train-images-idx3-ubyte.gz")[:args.train_images].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    train_y = torch.from_numpy(read_idx(DATA + "/train-labels-idx1-ubyte.gz")[:args.train_images].astype(np.int64))
    torch_train = fl_train = fl_train_double = float("inf")

    def fl_cmd(count):
        return [args.faultline, "train", "--model", model, "--epochs", "1", "--limit", str(count), "--batch-size", str(args.batch),
                "--optimizer", "adam", "--lr", "1e-3", "--schedule", "constant", "--threads", str(args.threads),
                "--out", os.path.join(work, "trained.onnx")]
    for _ in range(args.repeat):
        trained = build(args.arch, args.width)
        trained.load_state_dict(torch.load(weights))
        trained.train()
        optimizer = torch.optim.Adam(trained.parameters(), lr=1e-3)
        order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(1))
        start = time.perf_counter()
        for i in range(0, len(train_x), args.batch):
            batch = order[i:i + args.batch]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(trained(train_x[batch]), train_y[batch])
            loss.backward()
            optimizer.step()
        torch_train = min(torch_train, time.perf_counter() - start)
        fl_train = min(fl_train, run_seconds(fl_cmd(args.train_images))[0])
        # Twice the images: the difference is the training of TRAIN_IMAGES images without the
        # process's fixed costs (start, loading all 60k training images, writing the model).
        fl_train_double = min(fl_train_double, run_seconds(fl_cmd(2 * args.train_images))[0])

    title = f"residual CNN width {args.width}, {args.width}/{2 * args.width}/{4 * args.width} channels" if args.arch == "residual" else "LeNet-5"
    print(f"{title}, {macs / 1e6:.2f} M MACs per image, "
          f"{args.threads} threads, best of {args.repeat}, PyTorch {torch.__version__}")
    print(f"{'measurement':<44} {'PyTorch s':>10} {'Faultline s':>12} {'ratio':>6}")
    print(f"{'inference 10k images (forward loop / eval)':<44} {torch_s:10.3f} {fl_s:12.3f} {torch_s / fl_s:6.2f}")
    print(f"{'inference 10k images, whole processes':<44} {torch_whole:10.3f} {fl_whole:12.3f} {torch_whole / fl_whole:6.2f}")
    print(f"{f'training 1 epoch {args.train_images} images batch {args.batch}':<44} {torch_train:10.3f} {fl_train:12.3f} {torch_train / fl_train:6.2f}")
    marginal = fl_train_double - fl_train
    print(f"{'  the same, Faultline without fixed costs':<44} {torch_train:10.3f} {marginal:12.3f} {torch_train / marginal:6.2f}")
    print(f"accuracy (untrained weights): PyTorch {torch_accuracy:.2f} %, Faultline {fl_accuracy:.2f} %; "
          f"Faultline inference {2 * macs * n / fl_s / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
