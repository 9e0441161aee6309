#!/usr/bin/env python3
"""User RTL end to end (issue 13): the example unit with its own twin and registers passes cosim
with every stimulus and back-pressure pattern and runs a network at --level rtl --check; each
deliberately broken copy is caught by the default cosim run and by eval --level rtl --check; the
README's module.txt example is the example module's file; bad hardware descriptions and register
values end with one line and exit 2.

Usage: user_rtl_test.py FAULTLINE SOURCE_DIR WORK_DIR
Needs the modules of tests/user_rtl built in (FAULTLINE_USER_RTL), as .ci/test.sh does."""
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

faultline, source_dir, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)
failures = []


def run(*args):
    p = subprocess.run([faultline, *args], capture_output=True, text=True, timeout=1200)
    return p.returncode, p.stdout, p.stderr


def expect(name, ok, detail):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


# 1. The README's module.txt example is tests/user_rtl/shift_mvu/module.txt, byte for byte.
readme = open(os.path.join(source_dir, "rtl", "README.md"), encoding="utf-8").read()
block = re.search(r"```\n(# shift_mvu/module\.txt.*?)```", readme, re.S)
module_txt = open(os.path.join(source_dir, "tests", "user_rtl", "shift_mvu", "module.txt"), encoding="utf-8").read()
expect("README module.txt example is the built example", block is not None and block.group(1) == module_txt,
       "rtl/README.md's example differs from tests/user_rtl/shift_mvu/module.txt")

# 2. cosim: the correct unit passes every stimulus and pattern; broken copies fail the default run.
for stimulus in ["uniform", "sparse", "zeros", "extremes", "mixed"]:
    for pattern in ["random", "bursts", "alternate", "none"]:
        if stimulus != "mixed" and pattern != "bursts":
            continue  # every stimulus under bursts, every pattern under mixed
        rc, out, err = run("cosim", "--rtl", "shift_mvu", "--stimulus", stimulus, "--backpressure-pattern", pattern, "--vectors", "1200")
        expect(f"shift_mvu cosim {stimulus}/{pattern}", rc == 0 and ", 0 mismatching" in out, f"exit {rc}: {out}{err}")
rc, out, err = run("cosim", "--rtl", "shift_mvu")
expect("shift_mvu default cosim", rc == 0 and re.search(r"3[0-9]{3} vectors, 0 mismatching", out), f"exit {rc}: {out}{err}")
x = np.random.default_rng(5).integers(-128, 128, size=(50, 8)).astype(np.int32)
x[::3] = 0
np.save(os.path.join(work, "vectors.npy"), x)
rc, out, err = run("cosim", "--rtl", "shift_mvu", "--stimulus", os.path.join(work, "vectors.npy"), "--vectors", "500")
expect("shift_mvu cosim from an NPY file", rc == 0 and ", 0 mismatching" in out, f"exit {rc}: {out}{err}")
for bug in (1, 2, 3):
    rc, out, err = run("cosim", "--rtl", f"broken_shift_mvu_{bug}")
    expect(f"broken_shift_mvu_{bug} caught by the default cosim", rc == 1 and "first mismatch:" in out, f"exit {rc}: {out}{err}")

# 3. A network at --level rtl --check: 784-24-10 MLP with random weights (ReLU makes zero lanes).
rng = np.random.default_rng(3)
w1 = rng.normal(0, 0.05, size=(24, 784)).astype(np.float32)
w2 = rng.normal(0, 0.3, size=(10, 24)).astype(np.float32)
graph = helper.make_graph(
    [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w1"], ["h"], name="fc1", transB=1),
     helper.make_node("Relu", ["h"], ["r"]), helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2", transB=1)],
    "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 28, 28])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
    [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
model_path = os.path.join(work, "mlp.onnx")
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model_path)


def hw(name, module, registers="", extra=""):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"name: {name}\nunits:\n  mvu:\n    kind: int8_digital\n    impl: rtl:{module}\n{registers}{extra}mapping:\n  - layers: '*'\n    unit: mvu\n")
    return path


def accuracy(out):
    m = re.search(r"accuracy ([0-9.]+) %", out)
    return m.group(1) if m else None


good = hw("good", "shift_mvu")
rc, out_f, err = run("eval", "--model", model_path, "--hw", good, "--limit", "60")
acc_f = accuracy(out_f)
rc2, out_r, err2 = run("eval", "--model", model_path, "--hw", good, "--limit", "60", "--level", "rtl", "--check", "--threads", "1")
expect("shift_mvu eval --level rtl --check equals the functional level", rc == 0 and rc2 == 0 and acc_f is not None and accuracy(out_r) == acc_f,
       f"functional exit {rc} {out_f}{err}; rtl exit {rc2} {out_r}{err2}")
for bug in (1, 2, 3):
    path = hw(f"broken{bug}", f"broken_shift_mvu_{bug}")
    rc, out, err = run("eval", "--model", model_path, "--hw", path, "--limit", "60", "--level", "rtl", "--check", "--threads", "1")
    line = err.strip()
    caught = rc == 2 and line.count("\n") == 0 and (("--check:" in line and "layer fc" in line and "vector" in line) or "results within" in line)
    expect(f"broken_shift_mvu_{bug} caught by eval --level rtl --check", caught, f"exit {rc}: {out}{err}")

# 4. Registers from the hardware description, checked against the module's widths. A shift and
# saturation change the products: the twin at those registers defines them at the functional level
# as at the RTL level, so the two levels still agree bit for bit (per-layer error and accuracy).
import json
shifted = hw("shifted", "shift_mvu", "    registers: {shift: 2, saturate: 1}\n")
rc, out, err = run("hw", "check", shifted)
expect("hw check: registers that change the products", rc == 0 and "ok" in out, f"exit {rc}: {out}{err}")
results = {}
for level, extra in (("functional", []), ("rtl", ["--level", "rtl", "--check", "--threads", "1"])):
    for name, path in (("shifted", shifted), ("good", good)):
        out_json = os.path.join(work, f"{name}-{level}.json")
        rc, out, err = run("eval", "--model", model_path, "--hw", path, "--limit", "60", "--out", out_json, *extra)
        results[name, level] = json.load(open(out_json)) if rc == 0 else None
        expect(f"eval {name} at {level}", rc == 0, f"exit {rc}: {out}{err}")
if all(results.values()):
    errors = {k: [layer["rms_error"] for layer in v["layers"]] for k, v in results.items()}
    expect("shifted registers: functional level equals the RTL level",
           errors["shifted", "functional"] == errors["shifted", "rtl"] and
           results["shifted", "functional"]["accuracy"]["trials"] == results["shifted", "rtl"]["accuracy"]["trials"], str(errors))
    expect("shifted registers change the functional level's products", errors["shifted", "functional"] != errors["good", "functional"], str(errors))
cases = [
    ("register unknown", hw("r1", "shift_mvu", "    registers: {nope: 1}\n"), ["r1.yaml", "no register 'nope'"]),
    ("register too wide", hw("r2", "shift_mvu", "    registers: {shift: 99999}\n"), ["r2.yaml", "shift", "4 bits", "[0, 15]"]),
    ("register negative", hw("r3", "shift_mvu", "    registers: {shift: -1}\n"), ["r3.yaml", "shift", "whole number"]),
    ("module not built", hw("r5", "no_such_module"), ["r5.yaml:", "impl", "no_such_module", "FAULTLINE_USER_RTL"]),
]
for name, path, needles in cases:
    rc, out, err = run("hw", "check", path)
    line = err.strip()
    expect(f"hw check: {name}", rc == 2 and line.count("\n") == 0 and all(n in line for n in needles), f"exit {rc}: {out}{err}")
rc, out, err = run("hw", "check", good, "--set", "units.mvu.registers.round=0")
expect("hw check: --set a register", rc == 0 and "ok" in out, f"exit {rc}: {out}{err}")
rc, out, err = run("hw", "check", good, "--set", "units.mvu.registers.round=2")
expect("hw check: --set a register out of range", rc == 2 and "round" in err and "1 bits" in err, f"exit {rc}: {out}{err}")
rc, out, err = run("cosim", "--rtl", "shift_mvu", "--set", "shift=16")
expect("cosim --set out of range", rc == 2 and "shift" in err and "[0, 15]" in err, f"exit {rc}: {out}{err}")
rc, out, err = run("cosim", "--rtl", "shift_mvu", "--set", "shift=3", "--set", "saturate=1", "--vectors", "1200")
expect("cosim with registers set", rc == 0 and ", 0 mismatching" in out and "differ from the exact products" in out, f"exit {rc}: {out}{err}")

print(f"{len(failures)} failing" if failures else "all passed")
sys.exit(1 if failures else 0)
