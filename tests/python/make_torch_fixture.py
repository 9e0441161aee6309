#!/usr/bin/python3
"""CTest fixture for the Python tests: trains tests/python/small_cnn.py in PyTorch for one epoch on
12 000 Fashion-MNIST training images (read through faultline.load_data) and writes WORK/cnn.pt
(state dict) and WORK/cnn.onnx. Usage: make_torch_fixture.py WORK"""
import os
import sys

import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
import faultline  # noqa: E402
from small_cnn import export, small_cnn  # noqa: E402

work = sys.argv[1]
os.makedirs(work, exist_ok=True)
torch.manual_seed(1)
torch.set_num_threads(2)
train = faultline.load_data("fashion-mnist", train=True)
images = torch.from_numpy(train.images[:12000].copy())
labels = torch.from_numpy(train.labels[:12000].astype("int64"))
model = small_cnn()
opt = torch.optim.Adam(model.parameters(), 2e-3)
model.train()
for start in range(0, len(images), 64):
    opt.zero_grad()
    loss = F.cross_entropy(model(images[start:start + 64]), labels[start:start + 64])
    loss.backward()
    opt.step()
torch.save(model.state_dict(), os.path.join(work, "cnn.pt"))
export(model, os.path.join(work, "cnn.onnx"))
print(f"fixture: last batch loss {loss.item():.3f}; wrote {work}/cnn.pt and cnn.onnx")
