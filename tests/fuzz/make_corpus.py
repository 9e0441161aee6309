#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET): small valid files of
each kind. Run once with Debian's python3 (onnx, numpy); the files are committed. Inputs that
crashed a target are added next to them by hand (crash-*), never rewritten by this script."""
import gzip
import io
import json
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

root = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(root, "corpus")


def out(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def init(name, shape, seed):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def model(name, nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    out("onnx", name + ".onnx", m.SerializeToString())


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


# ONNX: the operators Faultline runs, in tiny graphs.
model("mlp", [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
              helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1), helper.make_node("Softmax", ["y"], ["p"], axis=1)],
      [vi("x", [1, 6])], [vi("p", [1, 3])], [init("w1", [5, 6], 1), init("b1", [5], 2), init("w2", [3, 5], 3), init("b2", [3], 4)])
model("cnn", [helper.make_node("Conv", ["x", "k", "kb"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
              helper.make_node("Relu", ["c"], ["r"]), helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
              helper.make_node("Flatten", ["m"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)],
      [vi("x", [1, 1, 6, 6])], [vi("y", [1, 4])], [init("k", [2, 1, 3, 3], 5), init("kb", [2], 6), init("w", [4, 18], 7), init("b", [4], 8)])
model("matmul", [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])],
      [vi("x", [2, 4])], [vi("y", [2, 3])], [init("w", [4, 3], 9), init("b", [3], 10)])
model("shapes", [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
                 helper.make_node("Concat", ["t", "t"], ["c"], axis=0), helper.make_node("Slice", ["c", "st", "en"], ["y"])],
      [vi("x", [2, 3])], [vi("y", [6, 1])],
      [numpy_helper.from_array(np.array([3, 2], np.int64), "s"), numpy_helper.from_array(np.array([0], np.int64), "st"),
       numpy_helper.from_array(np.array([1], np.int64), "en")])
model("bn_pool", [helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"]),
                  helper.make_node("AveragePool", ["n"], ["a"], kernel_shape=[2, 2]),
                  helper.make_node("GlobalAveragePool", ["a"], ["y"])],
      [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 1, 1])],
      [init("g", [2], 11), init("b", [2], 12), init("m", [2], 13), numpy_helper.from_array(np.ones(2, np.float32), "v")])
model("gather", [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["d"], axis=0),
                 helper.make_node("Unsqueeze", ["d", "ax"], ["u"]), helper.make_node("Concat", ["u", "u"], ["c"], axis=0),
                 helper.make_node("Reshape", ["x", "c"], ["y"])],
      [vi("x", [2, 2])], [vi("y", [2, 2])],
      [numpy_helper.from_array(np.array(0, np.int64), "i"), numpy_helper.from_array(np.array([0], np.int64), "ax")])
model("elementwise", [helper.make_node("Mul", ["x", "x"], ["a"]), helper.make_node("Sub", ["a", "x"], ["b"]),
                      helper.make_node("Div", ["b", "c"], ["d"]), helper.make_node("Sigmoid", ["d"], ["e"]),
                      helper.make_node("Tanh", ["e"], ["f"]), helper.make_node("Clip", ["f", "lo", "hi"], ["y"])],
      [vi("x", [3])], [vi("y", [3])],
      [init("c", [3], 14), numpy_helper.from_array(np.array(-0.5, np.float32), "lo"), numpy_helper.from_array(np.array(0.5, np.float32), "hi")])
model("opset11_pad", [helper.make_node("Conv", ["x", "k"], ["y"], pads=[0, 1, 0, 1], strides=[1, 2], dilations=[1, 1], group=1)],
      [vi("x", [1, 2, 3, 5])], [vi("y", [1, 1, 1, 3])], [init("k", [1, 2, 3, 3], 15)], opset=11)

# NPY: every dtype and header version the reader accepts.
def npy(name, array, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, array)
    else:
        np.lib.format.write_array(b, array, version=version)
    out("npy", name, b.getvalue())


npy("f4_2d.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
npy("f8_1d.npy", np.linspace(0, 1, 5))
npy("i8_3d.npy", np.arange(8, dtype=np.int64).reshape(2, 2, 2))
npy("i4_1d.npy", np.arange(4, dtype=np.int32))
npy("scalar.npy", np.array(3.5, np.float32))
npy("empty.npy", np.zeros((0, 4), np.float32))
npy("v2.npy", np.ones((2, 2), np.float32), version=(2, 0))

# IDX: images and labels, plain and gzip.
def idx(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx([2, 3, 3], range(18))
labels = idx([2], [1, 7])
out("idx", "images.idx", images)
out("idx", "labels.idx", labels)
out("idx", "images.idx.gz", gzip.compress(images, mtime=0))
out("idx", "labels.idx.gz", gzip.compress(labels, mtime=0))

# Hardware descriptions: every shipped preset.
presets = os.path.join(root, "..", "..", "hwcfg")
for f in sorted(os.listdir(presets)):
    if f.endswith(".yaml"):
        with open(os.path.join(presets, f), "rb") as source:
            out("hwcfg", f, source.read())

# Sweep log rows (studies/sweep.cpp write_row_fields), one grid and one Walking Noise row.
def row(index, key, role, values, layer, sigma):
    return {"row": index, "key": key, "role": role, "values": values, "layer": layer, "sigma": sigma, "hardware": "rram_crossbar",
            "images": 600, "accuracy": {"mean": 0.75, "std": 0.01, "ci95": [0.74, 0.76], "trials": [0.74, 0.76]},
            "layers": [{"name": "fc1", "unit": "xbar", "kind": "analog_crossbar", "rms_error": 0.02, "snr_db": 31.5},
                       {"name": "fc2", "unit": "exact", "kind": "ideal", "rms_error": 0, "snr_db": None}]}


out("sweep_log", "grid.jsonl", (json.dumps(row(0, "units.xbar.adc_bits=6", "grid", ["6"], "", 0), separators=(",", ":")) + "\n").encode())
out("sweep_log", "walking.jsonl", "\n".join(json.dumps(row(k, key, role, [], layer, s), separators=(",", ":"))
                                             for k, (key, role, layer, s) in enumerate([("clean", "clean", "", 0), ("fc1@0.1", "sweep", "fc1", 0.1),
                                                                                        ("fc1@0.3", "bisect", "fc1", 0.3)])).encode() + b"\n")

# A trace sidecar naming the two arrays fuzz_trace.cpp provides.
trace = {"faultline_trace": 1, "model": "m.onnx", "data": "fashion-mnist", "hardware": "rram_crossbar", "hardware_source": "rram_crossbar.yaml",
         "level": "functional", "seed": 1, "trial": 0, "images": 2, "max_samples": 2, "accuracy": 0.5, "what": "y = x·Wᵀ",
         "layers": [{"name": "fc1", "op": "Gemm", "unit": "xbar", "kind": "analog_crossbar", "outputs": 3, "rows_seen": 2, "rows_kept": 2,
                     "ideal": "a.npy", "hardware": "a.npy"}],
         "hwcfg": "name: x\nunits: {}\n"}
out("trace", "trace.json", (json.dumps(trace, ensure_ascii=False) + "\n").encode())
trace["layers"] = []
out("trace", "no_layers.json", (json.dumps(trace) + "\n").encode())
