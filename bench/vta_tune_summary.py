#!/usr/bin/python3
"""Summary of bench/vta_tune_study.sh as Markdown (and OUT/summary.json for `faultline report`).
Usage: vta_tune_summary.py OUT SEEDS"""
import json
import math
import os
import sys

out, seeds = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open(os.path.join(out, name, "tune.json")))
nets = ["resnet18", "lenet5"]
reasons = ["inp_buffer", "wgt_buffer", "acc_buffer", "uop_buffer", "instruction_field", "acc_hazard", "thread_split"]
summary = {"spaces": [], "strategies": {}, "rtl": {}}

print("## Spaces (exhaustive, cycle level)\n")
print("| layer | space | valid | " + " | ".join(r.replace("_", " ") for r in reasons) + " | default cycles | best cycles | best schedule | speedup | exhaustive trials to best |")
print("| --- " * (8 + len(reasons)) + "|")
total_space = total_valid = 0
for net in nets:
    for l in load(f"{net}-exhaustive")["layers"]:
        total_space += l["space"]
        total_valid += l["valid"]
        shares = " | ".join(f"{100 * l['invalid_share'][r]:.1f} %" for r in reasons)
        print(f"| {net} {l['layer']} | {l['space']} | {100 * l['valid'] / l['space']:.1f} % | {shares} | {l['default']['cycles']} | {l['best']['cycles']} | "
              f"{l['best']['schedule']} | {l['speedup_over_default']:.2f}x | {l['trials_to_best']} |")
        summary["spaces"].append({"net": net, **{k: l[k] for k in ("layer", "space", "valid", "invalid_share", "default", "best", "speedup_over_default", "trials_to_best")}})
print(f"\nAll layers: {total_space} configurations, {100 * (1 - total_valid / total_space):.1f} % invalid.\n")


def stats(values):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd, min(values), max(values)


print(f"## Trials to the space's best over {seeds} seeds (mean ± std [min, max]; plan size 64 as AutoTVM's XGBTuner)\n")
print("| layer | random | xgb | validity | validity / xgb | xgb within 1 % | validity within 1 % |")
print("| --- | --- | --- | --- | --- | --- | --- |")
per_strategy = {s: [] for s in ("random", "xgb", "validity")}
measured = {s: [] for s in per_strategy}  # valid trials (measurements on the simulator) until the best
within = {s: [] for s in ("xgb", "validity")}
ratios = []
for net in nets:
    names = [l["layer"] for l in load(f"{net}-exhaustive")["layers"]]
    for i, name in enumerate(names):
        row = {}
        for strategy in per_strategy:
            runs = [load(f"{net}-{strategy}-{seed}")["layers"][i] for seed in range(1, seeds + 1)]
            assert all(r["reference_is_space_best"] for r in runs), "the exhaustive log is incomplete"
            row[strategy] = [r["trials_to_best"] for r in runs]
            measured[strategy] += [r["measurements_to_best"] for r in runs]
            if strategy in within:
                row[strategy + "_1pct"] = [r["trials_to_within_1pct"] for r in runs]
                within[strategy] += row[strategy + "_1pct"]
            per_strategy[strategy] += row[strategy]
        fmt = lambda v: "{:.0f} ± {:.0f} [{}, {}]".format(*stats(v))
        ratio = stats(row["validity"])[0] / stats(row["xgb"])[0]
        ratios.append(ratio)
        print(f"| {net} {name} | {fmt(row['random'])} | {fmt(row['xgb'])} | {fmt(row['validity'])} | {ratio:.2f} | {fmt(row['xgb_1pct'])} | {fmt(row['validity_1pct'])} |")
        summary["strategies"][f"{net} {name}"] = row
geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
totals = {s: sum(v) for s, v in per_strategy.items()}
print(f"\nAll layers: trials to the best summed over layers and seeds: random {totals['random']}, xgb {totals['xgb']}, validity {totals['validity']}; "
      f"validity needs {100 * totals['validity'] / totals['xgb']:.1f} % of xgb's trials (geometric mean of the per-layer ratios {geo:.2f}); "
      f"within 1 %: xgb {sum(within['xgb'])}, validity {sum(within['validity'])}.")
m = {s: sum(v) for s, v in measured.items()}
print(f"Measurements (valid trials, the ones the simulator runs) until the best: random {m['random']}, xgb {m['xgb']}, validity {m['validity']} "
      f"(validity {100 * m['validity'] / m['xgb']:.1f} % of xgb's).")
summary["totals"] = totals
summary["measurement_totals"] = m
summary["validity_over_xgb"] = totals["validity"] / totals["xgb"]


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1  # ties share their mean rank
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


runs_file = os.path.join(out, "rtl", "runs.txt")
if os.path.exists(runs_file):
    print("\n## The cycle level against the RTL level (GEMMs on the Verilated BLOCK x BLOCK core)\n")
    print("| layer | configurations | Spearman rho | cycle-level cycles (min, max) | RTL-level cycles (min, max) | same best |")
    print("| --- | --- | --- | --- | --- | --- |")
    by_layer = {}
    for line in open(runs_file):
        f = line.split()
        c = json.load(open(f[-1] + ".cycle.json"))["cycles"]
        r = json.load(open(f[-1] + ".rtl.json"))["cycles"]
        by_layer.setdefault(f[0], []).append((c, r))
    for layer, pairs in by_layer.items():
        cyc, rtl = [p[0] for p in pairs], [p[1] for p in pairs]
        rho = spearman(cyc, rtl)
        same = cyc.index(min(cyc)) == rtl.index(min(rtl))
        print(f"| lenet5 {layer} | {len(pairs)} | {rho:.3f} | {min(cyc)}, {max(cyc)} | {min(rtl)}, {max(rtl)} | {'yes' if same else 'no'} |")
        summary["rtl"][layer] = {"pairs": pairs, "spearman": rho}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
