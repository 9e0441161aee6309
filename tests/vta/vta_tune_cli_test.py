#!/usr/bin/env python3
"""`faultline tune` end to end (issue 15): the same results on 1 and 2 threads; a tune killed
midway and rerun ends with the same files as one that ran through; the strategies against the
exhaustive measurements; tuned schedules keep a network's accuracy bit for bit and change its
cycles; bad input ends with one line, exit 2.
Usage: vta_tune_cli_test.py FAULTLINE WORK_DIR SOURCE_DIR"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

faultline, work, source = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def run(*args, timeout=600):
    p = subprocess.run([faultline, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))
    if not ok:
        failures.append(name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# An untrained LeNet-5 (the schedule's effect on values is nil either way; accuracy is compared bit for bit).
model = os.path.join(work, "lenet5.onnx")
rc, out, err = run("train", "--arch", "lenet5", "--epochs", "1", "--limit", "64", "--out", model)
expect("train a LeNet-5", rc == 0, err)

# 1 and 2 threads: the same files.
for threads in ("1", "2"):
    rc, out, err = run("tune", "--model", model, "--out", os.path.join(work, "t" + threads), "--threads", threads)
    expect(f"tune on {threads} thread(s)", rc == 0 and "conv1" in out, err)
same = all(read(os.path.join(work, "t1", f)) == read(os.path.join(work, "t2", f)) for f in ("tune.json", "tuned.yaml", "measurements.log"))
expect("same results on 1 and 2 threads", same)
result = json.loads(read(os.path.join(work, "t1", "tune.json")))
layers = {l["layer"]: l for l in result["layers"]}
expect("every layer tuned", sorted(layers) == ["conv1", "conv2", "fc1", "fc2", "fc3"], sorted(layers))
for name, l in layers.items():
    shares = sum(l["invalid_share"].values())
    ok = (l["reference_is_space_best"] and l["best"]["cycles"] == l["reference_cycles"] and l["best"]["cycles"] <= l["default"]["cycles"]
          and len(l["trials"]) == l["space"] and abs(shares - (1 - l["valid"] / l["space"])) < 1e-5 and l["trials_to_best"] >= 1)
    expect(f"{name}: exhaustive finds the space's best and accounts for every configuration", ok, l)

# The strategies against the exhaustive log: each reaches the space's best within the whole space;
# validity's first plan is all valid configurations, random's is not.
log = os.path.join(work, "t1", "measurements.log")
for strategy in ("random", "xgb", "validity"):
    d = os.path.join(work, strategy)
    rc, out, err = run("tune", "--model", model, "--out", d, "--strategy", strategy, "--seed", "3", "--log", log, "--plan-size", "16")
    expect(f"tune --strategy {strategy}", rc == 0, err)
    r = json.loads(read(os.path.join(d, "tune.json")))
    for l in r["layers"]:
        expect(f"{strategy} {l['layer']}: reaches the space's best", l["reference_is_space_best"] and l["trials_to_best"] >= 1 and
               l["best"]["cycles"] == layers[l["layer"]]["best"]["cycles"], l)
    conv1 = next(l for l in r["layers"] if l["layer"] == "conv1")
    first = conv1["trials"][:16]
    invalid_first = sum(1 for _, cycles in first if isinstance(cycles, str))
    if strategy == "validity":
        expect("validity: the first plan is all valid", invalid_first == 0, first)
    if strategy == "random":
        expect("random: the first plan has invalid configurations", invalid_first > 0, first)
rc, out, err = run("tune", "--model", model, "--out", os.path.join(work, "random4"), "--strategy", "random", "--seed", "4", "--log", log, "--plan-size", "16")
other = json.loads(read(os.path.join(work, "random4", "tune.json")))
expect("another seed, another order", other["layers"][0]["trials"] != json.loads(read(os.path.join(work, "random", "tune.json")))["layers"][0]["trials"])

# The report draws the tunings: best-so-far per trial for each file, the validity map of full spaces.
rc, out, err = run("report", "--out", os.path.join(work, "report"), os.path.join(work, "t1", "tune.json"), os.path.join(work, "xgb", "tune.json"))
md = open(os.path.join(work, "report", "report.md")).read() if rc == 0 else ""
expect("report draws the tunings", rc == 0 and "tuning_best_so_far" in md and md.count("tuning_validity_map.png") == 1 and "| xgb | 3 | conv1 |" in md, (rc, err, md[:500]))

# Killed and resumed: the same files as a run straight through (ResNet-18's last layers, a few seconds).
shapes = os.path.join(source, "bench", "resnet18_vta_layers.txt")
args = ["tune", "--shapes", shapes, "--layers", "layer4.*", "--strategy", "xgb", "--seed", "5"]
rc, out, err = run(*args, "--out", os.path.join(work, "straight"))
expect("tune ResNet-18's layer4", rc == 0, err)
killed = os.path.join(work, "killed")
p = subprocess.Popen([faultline, *args, "--out", killed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
log_path = os.path.join(killed, "measurements.log")
deadline = time.monotonic() + 60
while time.monotonic() < deadline and (not os.path.exists(log_path) or read(log_path).count(b"\n") < 60):
    time.sleep(0.02)
p.send_signal(signal.SIGKILL)
p.wait()
lines_at_kill = read(log_path).count(b"\n") if os.path.exists(log_path) else 0
expect("killed midway", 1 < lines_at_kill < read(os.path.join(work, "straight", "measurements.log")).count(b"\n"), lines_at_kill)
with open(log_path, "ab") as f:
    f.write(b"256x14x14->512,k3x3")  # a line the kill cut short
rc, out, err = run(*args, "--out", killed)
expect("resumed", rc == 0, err)
expect("resumed: the same files as straight through",
       all(read(os.path.join(killed, f)) == read(os.path.join(work, "straight", f)) for f in ("tune.json", "measurements.log")))

# The tuned schedules in a hardware description: same accuracy bits, other cycles. (The convolutions:
# a dense layer's schedule is for the batch it was tuned at -- 1 here -- while eval's reads hold many rows.)
rc, out, err = run("tune", "--model", model, "--layers", "conv*", "--out", os.path.join(work, "conv"), "--log", log)
expect("tune the convolutions", rc == 0, err)
tuned = os.path.join(work, "conv", "tuned.yaml")
evals = {}
for name, hw in (("default", "vta"), ("tuned", tuned)):
    rc, out, err = run("eval", "--model", model, "--hw", hw, "--limit", "100", "--level", "cycle", "--out", os.path.join(work, name + ".json"))
    expect(f"eval --hw {name} --level cycle", rc == 0, err)
    evals[name] = json.loads(read(os.path.join(work, name + ".json")))
a, b = evals["default"], evals["tuned"]
expect("tuned: the same accuracy", a["accuracy"]["trials"] == b["accuracy"]["trials"], (a["accuracy"], b["accuracy"]))
cycles = lambda r: {l["name"]: l["counters"]["cycles"] for l in r["layers"]}
ca, cb = cycles(a), cycles(b)
expect("tuned: fewer cycles where the schedule changed", cb["conv1"] < ca["conv1"] and cb["fc1"] == ca["fc1"] and sum(cb.values()) < sum(ca.values()), (ca, cb))
expect("tuned: same per-layer error", [l["rms_error"] for l in a["layers"]] == [l["rms_error"] for l in b["layers"]])

# Bad input: one line, exit 2.
table = os.path.join(work, "bad_table.txt")
with open(table, "w") as f:
    f.write("ok 16 8 8 16 3 1 1\nbroken 16 8 eight 16 3 1 1\n")
other_hw = os.path.join(work, "other_log")
shutil.copytree(os.path.join(work, "t1"), other_hw)
cases = [
    ("unknown strategy", ["tune", "--model", model, "--out", os.path.join(work, "x"), "--strategy", "annealing"], ["--strategy", "annealing"]),
    ("model and shapes", ["tune", "--model", model, "--shapes", table, "--out", os.path.join(work, "x")], ["exactly one of --model and --shapes"]),
    ("bad table line", ["tune", "--shapes", table, "--out", os.path.join(work, "x")], ["bad_table.txt:2", "NAME IN_CHANNELS"]),
    ("no layer matches", ["tune", "--model", model, "--layers", "nothing*", "--out", os.path.join(work, "x")], ["--layers", "nothing*"]),
    ("log of other hardware", ["tune", "--model", model, "--out", other_hw, "--set", "units.vta.log_acc_buff_size=16"], ["measurements.log", "other hardware"]),
    ("no vta unit", ["tune", "--model", model, "--hw", "int8_digital", "--out", os.path.join(work, "x")], ["no unit of kind vta"]),
    ("schedule for no layer", ["eval", "--model", model, "--limit", "10", "--hw", tuned] +
     [a for k in ("tile_b", "tile_h", "tile_w", "tile_ci", "tile_co", "h_nthread", "oc_nthread") for a in ("--set", f"units.vta.schedule.conv9.{k}=1")],
     ["schedule.conv9", "no Conv"]),
    ("half a schedule", ["eval", "--model", model, "--limit", "10", "--hw", tuned, "--set", "units.vta.schedule.conv9.tile_b=1"], ["schedule.conv9", "every knob"]),
    ("schedule knob out of range", ["eval", "--model", model, "--limit", "10", "--hw", tuned, "--set", "units.vta.schedule.conv1.h_nthread=3"],
     ["schedule.conv1.h_nthread"]),
]
for name, args, needles in cases:
    rc, out, err = run(*args)
    line = err.strip()
    expect(f"bad: {name}", rc == 2 and "\n" not in line and all(n in line for n in needles), f"exit {rc}: {err}")

print(f"{len(failures)} failing" if failures else "all passed")
sys.exit(1 if failures else 0)
