"""bench/butterfly_pytorch.py's models -- butterfly and Monarch MLPs trained briefly in PyTorch and
exported as ONNX -- load in Faultline and reproduce PyTorch's logits within 1e-4 (relative to the
largest logit), and their batched MatMuls run as one substrate block per small matrix.

Usage: check_butterfly_export.py FAULTLINE SOURCE_DIR WORK_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np


def main():
    faultline, source, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    script = os.path.join(source, "bench", "butterfly_pytorch.py")
    for arch, width in (("butterfly_mlp", 64), ("monarch_mlp", 64), ("monarch_mlp", 32)):
        name = "%s-%d" % (arch, width)
        subprocess.run([sys.executable, script, "--arch", arch, "--width", str(width), "--epochs", "1", "--limit", "2000",
                        "--check", "128", "--out", work], check=True, stdout=subprocess.DEVNULL)
        model = os.path.join(work, name + ".onnx")
        out = os.path.join(work, name + ".faultline.npy")
        subprocess.run([faultline, "infer", "--model", model, "--input", os.path.join(work, "images.npy"), "--output", out],
                       check=True, stdout=subprocess.DEVNULL)
        ours, torch_logits = np.load(out), np.load(os.path.join(work, name + ".logits.npy"))
        error = float(np.abs(ours - torch_logits).max() / np.abs(torch_logits).max())
        print("%s: max |faultline - pytorch| / max |pytorch| = %.3g" % (name, error))
        if not error < 1e-4:
            print("FAIL: %s differs from PyTorch" % name)
            return 1
        # The structured layers are hardware layers: eval's per-layer report lists every MatMul.
        report = os.path.join(work, name + ".eval.json")
        subprocess.run([faultline, "eval", "--model", model, "--data", "fashion-mnist", "--hw", "ideal", "--limit", "200", "--out", report],
                       check=True, stdout=subprocess.DEVNULL)
        layers = [l for l in json.load(open(report))["layers"] if l.get("op") == "MatMul" or l.get("op_type") == "MatMul"]
        if len(layers) != (2 * 6 if arch == "butterfly_mlp" else 4):
            print("FAIL: %s: %d MatMul hardware layers in the report" % (name, len(layers)))
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
