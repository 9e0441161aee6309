#!/usr/bin/env python3
"""Summarizes a study repeated over training seeds (bench/hil_training_study.sh writes its input).

Input: WORK/manifest.csv with rows arm,condition,seed,eval_json (paths relative to WORK), each eval
JSON written by `faultline eval --out` for one trained network under one condition. For each
network the Monte Carlo trials are averaged first (one value per training seed); then per arm and
condition: the mean, the standard deviation and the 95 % Student-t confidence interval over the
seeds. `--compare "A|B|CONDITION"` adds the paired difference A − B over the seeds both arms have
under CONDITION (paired: the same seed and the same evaluation noise draws), with its 95 % t
interval; the finding "A beats B" holds when that interval excludes 0. "A|B|CONDITION_A|CONDITION_B"
compares arm A under one condition with arm B under another (e.g. one network on two hardware
variants).

Output: a table on stdout and WORK/seed_study.json (kind "seed_study"), which `faultline report`
draws as strip plots (one point per seed).
Usage: seed_study_summary.py WORK [--compare "A|B|CONDITION"]... [--title TEXT] [--out FILE]
"""
import argparse
import csv
import json
import math
import os
import sys

# Two-sided 95 % Student-t quantiles t_{0.975, dof}, dof = 1..30 (standard tables; the same as
# studies/study.cpp student_t95), and the Cornish-Fisher expansion beyond.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(dof):
    if dof < 1:
        return float("nan")
    if dof <= 30:
        return T95[dof - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * dof * dof)


def describe(values, low, high):
    """Mean, sample standard deviation and 95 % t interval of the mean (None with one value),
    clipped to [low, high] (an accuracy's interval to [0, 1], as `faultline eval` clips its own:
    with few seeds the t interval alone can pass 100 %)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [max(low, mean - half), min(high, mean + half)]}


def fail(message):
    print(f"seed_study_summary: {message}", file=sys.stderr)
    sys.exit(2)


def load(work):
    manifest = os.path.join(work, "manifest.csv")
    try:
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        fail(f"{manifest}: cannot read ({e.strerror})")
    cells = {}  # (arm, condition) -> {seed: (mean over trials, std over trials, trials)}
    for k, r in enumerate(rows):
        if set(r) != {"arm", "condition", "seed", "eval_json"} or not all(r.values()):
            fail(f"{manifest}: row {k + 2}: expected arm,condition,seed,eval_json")
        path = os.path.join(work, r["eval_json"])
        try:
            with open(path) as f:
                d = json.load(f)
            trials = [float(v) for v in d["accuracy"]["trials"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            fail(f"{path}: not a `faultline eval --out` result ({e})")
        if not trials:
            fail(f"{path}: no trials")
        try:
            seed = int(r["seed"])
        except ValueError:
            fail(f"{manifest}: row {k + 2}: seed '{r['seed']}' is not an integer")
        mean = sum(trials) / len(trials)
        std = math.sqrt(sum((v - mean) ** 2 for v in trials) / (len(trials) - 1)) if len(trials) > 1 else 0.0
        cells.setdefault((r["arm"], r["condition"]), {})[seed] = (mean, std, len(trials))
    return cells


def pct(v):
    return "   -  " if v is None else f"{100 * v:6.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work")
    p.add_argument("--compare", action="append", default=[], help='"A|B|CONDITION" or "A|B|CONDITION_A|CONDITION_B": paired difference A - B')
    p.add_argument("--title", default="study repeated over training seeds")
    p.add_argument("--out", help="the JSON summary (default WORK/seed_study.json)")
    a = p.parse_args()
    cells = load(a.work)
    arms = []
    print(f"{'arm':<36} {'condition':<24} {'seeds':>5} {'mean %':>7} {'std':>6} {'95 % CI over seeds':>20} {'trial std':>9}")
    for (arm, condition), by_seed in cells.items():
        seeds = sorted(by_seed)
        values = [by_seed[s][0] for s in seeds]
        trial_std = [by_seed[s][1] for s in seeds]
        d = describe(values, 0.0, 1.0)
        ci = "" if d["ci95"] is None else f"[{100 * d['ci95'][0]:6.2f}, {100 * d['ci95'][1]:6.2f}]"
        print(f"{arm:<36} {condition:<24} {len(seeds):>5} {pct(d['mean']):>7} {pct(d['std']):>6} {ci:>20} {100 * sum(trial_std) / len(trial_std):9.2f}")
        arms.append({"arm": arm, "condition": condition, "seeds": seeds, "values": values, "trial_std": trial_std,
                     "trials": [by_seed[s][2] for s in seeds], **{k: d[k] for k in ("mean", "std", "ci95")}})
    comparisons = []
    if a.compare:
        print()
        print(f"{'paired difference (A - B), condition':<90} {'seeds':>5} {'mean pts':>8} {'95 % CI (pts)':>18}  holds")
    for spec in a.compare:
        parts = spec.split("|")
        if len(parts) not in (3, 4):
            fail(f"--compare '{spec}': expected A|B|CONDITION or A|B|CONDITION_A|CONDITION_B")
        arm_a, arm_b, condition = parts[:3]
        condition_b = parts[3] if len(parts) == 4 else condition
        for arm, cond in ((arm_a, condition), (arm_b, condition_b)):
            if (arm, cond) not in cells:
                fail(f"--compare '{spec}': no results for arm '{arm}' under '{cond}'")
        xa, xb = cells[(arm_a, condition)], cells[(arm_b, condition_b)]
        if condition_b != condition:
            condition = f"{condition} vs {condition_b}"
        seeds = sorted(set(xa) & set(xb))
        diffs = [xa[s][0] - xb[s][0] for s in seeds]
        d = describe(diffs, -1.0, 1.0)
        holds = d["ci95"] is not None and (d["ci95"][0] > 0 or d["ci95"][1] < 0)
        ci = "" if d["ci95"] is None else f"[{100 * d['ci95'][0]:+6.2f}, {100 * d['ci95'][1]:+6.2f}]"
        verdict = "yes" if holds else ("n/a (one seed)" if d["ci95"] is None else "no (CI includes 0)")
        print(f"{arm_a + ' - ' + arm_b + ', ' + condition:<90} {len(seeds):>5} {100 * d['mean']:+8.2f} {ci:>18}  {verdict}")
        comparisons.append({"a": arm_a, "b": arm_b, "condition": condition, "seeds": seeds, "differences": diffs,
                            "holds": holds, **{k: d[k] for k in ("mean", "std", "ci95")}})
    out = a.out or os.path.join(a.work, "seed_study.json")
    doc = {"kind": "seed_study", "title": a.title, "confidence": 0.95, "interval": "Student t over training seeds",
           "arms": arms, "comparisons": comparisons}
    try:
        with open(out, "w") as f:
            json.dump(doc, f, indent=1)
    except OSError as e:
        fail(f"{out}: cannot write ({e.strerror})")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
