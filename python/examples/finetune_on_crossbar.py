#!/usr/bin/python3
"""A PyTorch user's hardware-aware fine-tuning, end to end:

1. train a small CNN in plain PyTorch on Fashion-MNIST (read with faultline.load_data);
2. export it to ONNX and measure its accuracy on the rram_crossbar preset with Monte Carlo trials
   (faultline.evaluate: each trial re-programs the crossbars);
3. fine-tune it with its Conv2d/Linear layers running on the crossbar (faultline.torch.convert;
   every step programs fresh crossbars, gradients straight-through or secant), and, as the
   control, the same fine-tuning with plain layers;
4. export again and measure on the crossbar with the same trials.
The evaluations go to OUT/finetune.json (eval's documents, for `faultline report`) and each to
OUT/eval-ARM-CONDITION.json (ARM pytorch-trained, finetuned-plain or finetuned-hw; CONDITION ideal
or hw), which bench/finetune_seed_study.sh collects over training seeds. `--seed` sets the
initialization and the data order (the fine-tuning uses seed + 1); the hardware draws do not
depend on it, so the arms of one seed and of different seeds see the same crossbars.

Usage: PYTHONPATH=build/python /usr/bin/python3 python/examples/finetune_on_crossbar.py
           [--epochs 2] [--finetune-epochs 1] [--limit 0] [--trials 5] [--hw rram_crossbar] [--seed 1] [--out DIR]
"""
import argparse
import copy
import json
import os
import time

import torch
from torch import nn
from torch.nn import functional as F

import faultline
import faultline.torch as ft


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def train(model, images, labels, epochs, lr, seed):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=g)
        total, seen = 0.0, 0
        for k in range(0, len(images), 64):
            idx = order[k:k + 64]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        print(f"  epoch {epoch + 1}: loss {total / seen:.4f}", flush=True)


def export(model, path):
    plain = cnn()
    plain.load_state_dict(model.state_dict())  # hardware layers keep the modules' parameter names
    plain.eval()
    torch.onnx.export(plain, torch.zeros(1, 1, 28, 28), path, input_names=["x"], output_names=["y"], opset_version=13,
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})


def measure(path, hw, trials, threads, label, documents, out, name):
    r = faultline.evaluate(path, hw, trials=trials, seed=1, threads=threads)
    with open(os.path.join(out, f"eval-{name}.json"), "w") as f:
        json.dump(r, f)
    r["hardware"] = f"{r['hardware']} ({label})"  # for the report's rows
    documents.append(dict(r))
    a = r["accuracy"]
    return a["mean"], a["ci95"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="train on the first N images (0: all 60 000)")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--hw", default="rram_crossbar")
    p.add_argument("--backward", default="ste", choices=["ste", "secant"])
    p.add_argument("--set", action="append", default=[], help="override a hardware field, e.g. units.xbar.out_noise=0.5")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=1, help="training seed: initialization and data order")
    p.add_argument("--out", default="finetune_out")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    hw = faultline.hardware(a.hw, a.set)  # validated once, before any training
    label = a.hw + "".join(f" {o}" for o in a.set)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    data = faultline.load_data("fashion-mnist", train=True)
    n = a.limit or data.count
    images = torch.from_numpy(data.images[:n].copy())
    labels = torch.from_numpy(data.labels[:n].astype("int64"))

    t0 = time.time()
    print(f"1. training in PyTorch on {n} images", flush=True)
    model = cnn()
    train(model, images, labels, a.epochs, 1e-3, seed=a.seed)
    before_path = os.path.join(a.out, "cnn.onnx")
    export(model, before_path)
    documents = []
    ideal = measure(before_path, "ideal", 1, a.threads, "PyTorch-trained", documents, a.out, "pytorch-trained-ideal")
    before = measure(before_path, hw, a.trials, a.threads, "PyTorch-trained", documents, a.out, "pytorch-trained-hw")
    print(f"2. exported: ideal {100 * ideal[0]:.2f} %, on {label} {100 * before[0]:.2f} % "
          f"[{100 * before[1][0]:.2f}, {100 * before[1][1]:.2f}] ({a.trials} trials)", flush=True)

    # The control: the same fine-tuning (epochs, rate, order) with plain layers, so that the
    # comparison separates training on the hardware from training longer.
    print("3a. control: the same fine-tuning with plain PyTorch layers", flush=True)
    control = copy.deepcopy(model)
    train(control, images, labels, a.finetune_epochs, 2e-4, seed=a.seed + 1)
    control_path = os.path.join(a.out, "cnn_finetuned_plain.onnx")
    export(control, control_path)
    control_result = measure(control_path, hw, a.trials, a.threads, "fine-tuned plain", documents, a.out, "finetuned-plain-hw")
    print(f"    on {label} {100 * control_result[0]:.2f} % [{100 * control_result[1][0]:.2f}, {100 * control_result[1][1]:.2f}]", flush=True)
    print(f"3b. fine-tuning with the layers on {label} ({a.backward})", flush=True)
    ft.convert(model, hw, seed=100, backward=a.backward, threads=a.threads)
    train(model, images, labels, a.finetune_epochs, 2e-4, seed=a.seed + 1)
    after_path = os.path.join(a.out, "cnn_finetuned.onnx")
    export(model, after_path)
    ideal_after = measure(after_path, "ideal", 1, a.threads, "fine-tuned on it", documents, a.out, "finetuned-hw-ideal")
    after = measure(after_path, hw, a.trials, a.threads, "fine-tuned on it", documents, a.out, "finetuned-hw-hw")
    with open(os.path.join(a.out, "finetune.json"), "w") as f:
        json.dump(documents, f)
    print(f"4. fine-tuned: ideal {100 * ideal_after[0]:.2f} %, on {label} {100 * after[0]:.2f} % "
          f"[{100 * after[1][0]:.2f}, {100 * after[1][1]:.2f}] ({a.trials} trials)")
    print(f"on {label}: {100 * before[0]:.2f} % -> {100 * after[0]:.2f} % fine-tuned on it ({100 * (after[0] - before[0]):+.2f} points), "
          f"{100 * control_result[0]:.2f} % fine-tuned plain ({100 * (after[0] - control_result[0]):+.2f} points for the hardware); "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
