#!/bin/bash
# Unreliable VTA: accuracy of a network on the `vta` preset against the bit error rate of each of
# VTA's memories in turn (INP, WGT, ACC and UOP: per bit a LOAD, GEMM or ALU writes; DRAM: per bit
# of each read's image before it runs), the others error-free. One resumable sweep per memory
# (rerunning continues a killed one), then a table: accuracy per rate and memory, and per memory
# the highest rate that keeps the mean accuracy within 1 point of the error-free network (the
# largest swept rate at or below which every swept rate does).
#
# Usage: bench/vta_ber_sweep.sh MODEL.onnx [BUILD_DIR] [OUT_PREFIX] [IMAGES] [TRIALS] [RATES]
#   defaults: build, build/results/vta-ber, 2000 images, 3 trials, log:1e-9:1e-3:13
set -euo pipefail
model=$1
build=${2:-build}
prefix=${3:-build/results/vta-ber}
images=${4:-2000}
trials=${5:-3}
rates=${6:-log:1e-9:1e-3:13}
faultline=$build/apps/faultline
mkdir -p "$(dirname "$prefix")"

memories=(inp wgt acc uop dram)
start=$(date +%s)
"$faultline" eval --model "$model" --hw vta --limit "$images" --seed 1 --layer-errors false --out "$prefix-clean.json" > /dev/null
for m in "${memories[@]}"; do
  "$faultline" sweep --model "$model" --hw vta --sweep "units.vta.${m}_bit_error_rate=$rates" --trials "$trials" --limit "$images" \
    --seed 1 --layer-errors false --out "$prefix-$m" > /dev/null
done
echo "swept ${#memories[@]} memories over $rates ($images images, $trials trials) in $(( $(date +%s) - start )) s on $(nproc) threads"

/usr/bin/python3 - "$prefix" "${memories[@]}" <<'EOF'
import csv, json, sys
prefix, memories = sys.argv[1], sys.argv[2:]
clean = json.load(open(prefix + "-clean.json"))
clean_acc = clean["accuracy"]["mean"]
table, rates = {}, []
for m in memories:
    rows = list(csv.DictReader(open(f"{prefix}-{m}.csv")))
    key = f"units.vta.{m}_bit_error_rate"
    table[m] = [(float(r[key]), float(r["accuracy_mean"]), float(r["ci95_low"]), float(r["ci95_high"])) for r in rows]
    rates = [r[0] for r in table[m]]
print(f"error-free: {100 * clean_acc:.2f} %")
print("| bit error rate | " + " | ".join(m.upper() for m in memories) + " |")
print("| --- |" + " --- |" * len(memories))
for k, rate in enumerate(rates):
    print(f"| {rate:.0e} | " + " | ".join(f"{100 * table[m][k][1]:.2f} %" for m in memories) + " |")
if True:
    tolerated = {}
    for m in memories:
        best = 0.0
        for r, acc, lo, hi in table[m]:
            if acc < clean_acc - 0.01:
                break
            best = r
        tolerated[m] = best
    print("highest rate within 1 point of error-free: " + ", ".join(f"{m.upper()} {tolerated[m]:.0e}" for m in memories))
    print("most sensitive (lowest tolerated rate): " + min(memories, key=lambda m: tolerated[m]).upper())
EOF
