"""The table of bench/butterfly_study.sh: per width and architecture the hidden layers' weights,
compression against dense, accuracies (ideal, IPU fp16 variants, crossbar with its 95 % CI over
trials), whether the model fits GC2/GC200 (tiles holding data) and GC200 cycles per batch.

Usage: butterfly_summary.py OUT "WIDTHS"
"""
import json
import os
import sys

import onnx
from onnx import numpy_helper


def hidden_weights(path):
    """Weights of the two hidden w x w layers: fc2/fc3 of the dense MLP, the factors of the
    structured ones (biases excluded)."""
    m = onnx.load(path)
    total = 0
    for init in m.graph.initializer:
        n = init.name
        if n in ("fc2.weight", "fc3.weight") and not any(i.name.startswith(("bfly", "monarch")) for i in m.graph.initializer):
            total += numpy_helper.to_array(init).size
        elif n.startswith(("bfly", "monarch")) and n.endswith(".weight"):
            total += numpy_helper.to_array(init).size
    return total


def accuracy(path):
    if not os.path.exists(path):
        return "-"
    a = json.load(open(path))["accuracy"]
    if len(a.get("trials", [])) > 1 and "ci95" in a:
        return "%.2f [%.2f, %.2f]" % (100 * a["mean"], 100 * a["ci95"][0], 100 * a["ci95"][1])
    return "%.2f" % (100 * a["mean"])


def plan(path):
    if not os.path.exists(path):
        return "no (a layer does not fit)", None
    d = json.load(open(path))
    u = d["units"][0]
    tiles = sum(1 for r, t in zip(u["resident"], u["transient"]) if r + t > 0)
    cycles = sum(l["cycles"] for l in d["layers"])
    return ("yes, %d tiles" % tiles if u["fits"] else "no (tile %d needs %.0f KiB)" % (u["fullest_tile"], u["fullest_bytes"] / 1024)), cycles


def main():
    out, widths = sys.argv[1], sys.argv[2].split()
    print("| width | hidden layers | weights | compression | ideal % | fp16 nearest % | fp16 stochastic % | fp16 partials nearest % | "
          "fp16 partials stochastic % | rram_crossbar % | fits GC2 | fits GC200 | GC200 cycles / batch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in widths:
        dense = 2 * int(w) * int(w)
        for arch, label in (("mlp", "dense"), ("butterfly_mlp", "butterfly"), ("monarch_mlp", "Monarch")):
            name = os.path.join(out, "%s-%s" % (arch, w))
            if not os.path.exists(name + ".onnx"):
                continue
            weights = hidden_weights(name + ".onnx")
            gc2, _ = plan(name + ".ipu_gc2.plan.json")
            gc200, cycles = plan(name + ".ipu_gc200.plan.json")
            print("| %s | %s | %d | %.1f %% fewer | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                w, label, weights, 100 * (1 - weights / dense), accuracy(name + ".ideal.json"), accuracy(name + ".fp16-nearest.json"),
                accuracy(name + ".fp16-stochastic.json"), accuracy(name + ".fp16p16-nearest.json"), accuracy(name + ".fp16p16-stochastic.json"),
                accuracy(name + ".crossbar.json"), gc2, gc200, "%.0f" % cycles if cycles is not None else "-"))


if __name__ == "__main__":
    main()
