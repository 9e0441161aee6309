"""Checks a model written by `faultline train` with the ONNX Python package: the full checker
(with shape inference) passes and the inferred output is [batch, 10] float scores.

Usage: check_exported_model.py FAULTLINE_BINARY WORK_DIR
"""
import os
import subprocess
import sys

import onnx

faultline, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
for arch in ("mlp", "lenet5"):
    path = os.path.join(work, arch + ".onnx")
    subprocess.run([faultline, "train", "--arch", arch, "--epochs", "1", "--limit", "128", "--out", path],
                   check=True, stdout=subprocess.DEVNULL)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    out = inferred.graph.output[0].type.tensor_type
    dims = [d.dim_param or d.dim_value for d in out.shape.dim]
    assert out.elem_type == onnx.TensorProto.FLOAT, out.elem_type
    assert dims == ["batch", 10], dims
    print(arch, "ok:", [n.op_type for n in model.graph.node])
