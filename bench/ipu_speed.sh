#!/usr/bin/env bash
# The IPU kind's fp16 emulation against ideal inference (issue 16's goal: within 3x on LeNet-5),
# in one run on the same machine: MODEL on the 10k Fashion-MNIST test images, ideal and each ipu
# preset back to back, best of 3 wall times each, with per-layer error measurement on (the
# default) and off. The cycle level's cost: bench/cycle_level_overhead.sh; planning: faultline_bench_ipu.
# Usage: bench/ipu_speed.sh FAULTLINE MODEL.onnx [THREADS]
set -euo pipefail
faultline=${1:?usage: ipu_speed.sh FAULTLINE MODEL.onnx [THREADS]}
model=${2:?usage: ipu_speed.sh FAULTLINE MODEL.onnx [THREADS]}
threads=${3:-$(nproc)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
best() {  # hw errors → the best of 3 wall times in seconds
  local b=""
  for _ in 1 2 3; do
    t=$("$faultline" eval --model "$model" --hw "$1" --threads "$threads" --layer-errors "$2" --out "$tmp/e.json" | sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p')
    b=$(awk -v a="$t" -v b="$b" 'BEGIN { print (b == "" || a < b) ? a : b }')
  done
  echo "$b"
}
printf '%-12s %-13s %10s %10s %8s\n' preset layer-errors "ideal s" "preset s" ratio
for errors in true false; do
  ideal=$(best ideal "$errors")
  for preset in ipu_gc2 ipu_gc200 ipu_small; do
    t=$(best "$preset" "$errors")
    printf '%-12s %-13s %10.3f %10.3f %8.2f\n' "$preset" "$errors" "$ideal" "$t" "$(awk -v a="$t" -v b="$ideal" 'BEGIN { print a / b }')"
  done
done
echo "($threads threads, 1 trial of 10k images; ipu_gc2: fp16.32 to nearest; ipu_gc200: fp16.32 stochastic; ipu_small: fp16.16 stochastic)"
