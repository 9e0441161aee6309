#!/usr/bin/python3
"""Overhead of faultline.torch layers (issue 17): forward + backward of LeNet-5 on batches of 64
Fashion-MNIST images, (a) plain PyTorch layers, (b) the same model with its Conv2d/Linear layers on
a hardware description (programmed every step, as Faultline's own training does), and (c)
`faultline train --arch lenet5 --hw HW` (Faultline's own hardware-in-the-loop training, Adam, the
same batch), each timed in this run on the same threads (best of REPEATS). Prints one table.

Usage: PYTHONPATH=build/python /usr/bin/python3 bench/torch_layers_speed.py build/apps/faultline
           [--hw rram_crossbar] [--batches 100] [--threads 2] [--repeats 3]"""
import argparse
import os
import subprocess
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F

import faultline
import faultline.torch as ft


def lenet5():
    # The architecture `faultline train --arch lenet5` builds (nn/train.cpp): 6 and 16 5x5
    # convolutions with max pooling, then 120-84-10.
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def torch_steps(model, images, labels, batches):
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    model.train()
    t0 = time.perf_counter()
    for b in range(batches):
        x, y = images[64 * b:64 * b + 64], labels[64 * b:64 * b + 64]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def faultline_train(binary, hw, batches, threads, epochs):
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        subprocess.run([binary, "train", "--arch", "lenet5", "--hw", hw, "--epochs", str(epochs), "--limit", str(64 * batches),
                        "--threads", str(threads), "--out", os.path.join(d, "m.onnx")], check=True, capture_output=True)
        return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--hw", default="rram_crossbar")
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = faultline.load_data("fashion-mnist", train=True)
    images = torch.from_numpy(data.images[:64 * a.batches].copy())
    labels = torch.from_numpy(data.labels[:64 * a.batches].astype("int64"))
    plain, hw = [], []
    fl = []
    for _ in range(a.repeats):
        torch.manual_seed(1)
        plain.append(torch_steps(lenet5(), images, labels, a.batches))
        torch.manual_seed(1)
        hw.append(torch_steps(ft.convert(lenet5(), a.hw, threads=a.threads), images, labels, a.batches))
        # Faultline's own: the difference of 2 and 1 epochs removes the start-up and data loading.
        fl.append(faultline_train(a.binary, a.hw, a.batches, a.threads, 2) - faultline_train(a.binary, a.hw, a.batches, a.threads, 1))
    per = lambda t: 1e3 * min(t) / a.batches  # noqa: E731
    print(f"LeNet-5, batch 64, forward + backward + Adam step, {a.threads} thread(s), best of {a.repeats}, {a.batches} batches")
    print(f"{'what':44s} {'ms/batch':>9s} {'ratio':>7s}")
    print(f"{'PyTorch, plain layers':44s} {per(plain):9.2f} {1.0:7.2f}")
    print(f"{'PyTorch, faultline.torch layers on ' + a.hw:44s} {per(hw):9.2f} {per(hw) / per(plain):7.2f}")
    print(f"{'faultline train --hw ' + a.hw:44s} {per(fl):9.2f} {per(fl) / per(plain):7.2f}")
    print(f"faultline.torch layers / faultline train: {per(hw) / per(fl):.2f}")


if __name__ == "__main__":
    main()
