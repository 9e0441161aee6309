"""bench/seed_study_summary.py and `faultline report` on its output (issue 19): per arm the mean,
standard deviation and 95 % t interval over training seeds of each network's trial mean; paired
differences with their intervals; bad input ends with one line and exit status 2.
Usage: test_seed_study.py FAULTLINE SOURCE_DIR WORK_DIR"""
import json
import math
import os
import shutil
import subprocess
import sys

faultline, source, work = sys.argv[1:4]
summary = os.path.join(source, "bench", "seed_study_summary.py")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(os.path.join(work, "evals"))
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def eval_json(name, trials):
    mean = sum(trials) / len(trials)
    doc = {"model": "m.onnx", "data": "fashion-mnist", "hardware": "ideal", "level": "functional", "seed": 7,
           "trials": len(trials), "images": 100, "accuracy": {"mean": mean, "std": 0, "ci95": [mean, mean], "trials": trials}}
    with open(os.path.join(work, "evals", name), "w") as f:
        json.dump(doc, f)
    return "evals/" + name


# Arm "strong" is 5 points above "weak" on every seed give or take 0.4; arm "twin" equals "weak"
# up to a sign-alternating 0.3 points (no difference).
seeds = [1, 2, 3, 4, 5]
weak = [0.70, 0.72, 0.69, 0.71, 0.73]
wobble = [0.004, -0.002, 0.003, -0.004, 0.001]
rows = ["arm,condition,seed,eval_json"]
for s, w, d in zip(seeds, weak, wobble):
    # Two trials per network: the network's value is their mean.
    rows.append(f"weak,noisy,{s},{eval_json(f'weak{s}.json', [w - 0.01, w + 0.01])}")
    rows.append(f"strong,noisy,{s},{eval_json(f'strong{s}.json', [w + 0.05 + d - 0.02, w + 0.05 + d + 0.02])}")
    rows.append(f"twin,noisy,{s},{eval_json(f'twin{s}.json', [w + (0.003 if s % 2 else -0.003)] * 2)}")
    rows.append(f"weak,clean,{s},{eval_json(f'weakclean{s}.json', [w + 0.1] * 2)}")
    rows.append(f"erratic,clean,{s},{eval_json(f'erratic{s}.json', [0.5 if s == 2 else 0.99] * 2)}")
with open(os.path.join(work, "manifest.csv"), "w") as f:
    f.write("\n".join(rows) + "\n")

run = subprocess.run([sys.executable, summary, work, "--compare", "strong|weak|noisy", "--compare", "twin|weak|noisy", "--compare", "weak|weak|clean|noisy"],
                     capture_output=True, text=True)
check(run.returncode == 0, f"summary exits 0: {run.stderr}")
doc = json.load(open(os.path.join(work, "seed_study.json")))
arms = {a["arm"]: a for a in doc["arms"] if a["condition"] == "noisy"}
# Independent arithmetic: mean, sample std, t_{0.975, 4} = 2.776 (Student's t table).
mean = sum(weak) / 5
std = math.sqrt(sum((v - mean) ** 2 for v in weak) / 4)
check(abs(arms["weak"]["mean"] - mean) < 1e-12, "weak mean")
check(abs(arms["weak"]["std"] - std) < 1e-12, "weak std over seeds")
check(abs(arms["weak"]["ci95"][1] - (mean + 2.776 * std / math.sqrt(5))) < 1e-12, "weak 95 % t interval")
check(arms["weak"]["values"] == [w for w in weak] or all(abs(a - b) < 1e-12 for a, b in zip(arms["weak"]["values"], weak)),
      "each network's value is the mean over its trials")
comparisons = {c["a"]: c for c in doc["comparisons"] if c["condition"] == "noisy"}
diffs = [0.05 + d for d in wobble]
dm = sum(diffs) / 5
ds = math.sqrt(sum((v - dm) ** 2 for v in diffs) / 4)
check(abs(comparisons["strong"]["mean"] - dm) < 1e-12, "paired mean difference")
check(abs(comparisons["strong"]["ci95"][0] - (dm - 2.776 * ds / math.sqrt(5))) < 1e-12, "paired difference interval")
check(comparisons["strong"]["holds"] is True, "a 5-point paired difference holds")
check(comparisons["twin"]["holds"] is False, "no difference: the interval includes 0")
erratic = [a for a in doc["arms"] if a["arm"] == "erratic"][0]
check(erratic["ci95"][1] == 1.0 and erratic["ci95"][0] < erratic["mean"], "an accuracy's interval is clipped at 100 %")
across = [c for c in doc["comparisons"] if c["condition"] == "clean vs noisy"]
check(len(across) == 1 and abs(across[0]["mean"] - 0.1) < 1e-12 and across[0]["holds"], "one arm under two conditions")
check("n/a" not in run.stdout and "yes" in run.stdout and "no (CI includes 0)" in run.stdout, "verdicts in the table")

report = subprocess.run([faultline, "report", os.path.join(work, "seed_study.json"), "--out", os.path.join(work, "report")],
                        capture_output=True, text=True)
check(report.returncode == 0, f"report exits 0: {report.stderr}")
md = open(os.path.join(work, "report", "report.md")).read() if report.returncode == 0 else ""
check("| strong − weak | noisy | 5 | +5.04 |" in md, "report lists the paired difference")
check("seed_spread" in md, "report draws the seed strip plot")


def expect_error(cmd, needles, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and all(n in r.stderr for n in needles), f"{what}: {r.returncode} {r.stderr!r}")


expect_error([sys.executable, summary, work, "--compare", "strong|nobody|noisy"], ["nobody", "no results"], "unknown arm")
expect_error([sys.executable, summary, work, "--compare", "strong|weak"], ["expected A|B|CONDITION"], "bad comparison")
os.remove(os.path.join(work, "evals", "twin3.json"))
expect_error([sys.executable, summary, work], ["twin3.json"], "missing eval file")
hostile = dict(doc)
hostile["arms"] = [dict(doc["arms"][0], values=[1.5] * 5)]
with open(os.path.join(work, "hostile.json"), "w") as f:
    json.dump(hostile, f)
expect_error([faultline, "report", os.path.join(work, "hostile.json"), "--out", os.path.join(work, "r2")], ["hostile.json", "arms[0].values"],
             "report refuses accuracies above 1")
print("FAIL" if failures else "PASS")
sys.exit(1 if failures else 0)
