#!/usr/bin/env bash
# Benchmark of `faultline sweep` (issue 6): a Walking Noise sweep of the mlp on Fashion-MNIST,
# 4 layers x 25 sigma x 5 trials on the 10k test images (plus the clean point and the bisection
# rounds), timed in the same run as: one process on all cores, one MPI rank with one thread, and
# two MPI ranks with one thread each; prints the wall times, the 1 -> 2 rank speedup, and checks
# that all three wrote identical files.
# Usage: bench/sweep_mpi_speedup.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
f=$(realpath "$build/apps/faultline")
work=$build/sweep_bench
mkdir -p "$work"
model=$work/mlp.onnx
[ -f "$model" ] || "$f" train --arch mlp --epochs 5 --batch-size 128 --seed 1 --out "$model" > /dev/null
args=(sweep --model "$model" --walking additive --sigma log:1e-3:1e2:25 --trials 5 --seed 1 --layer-errors false)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() {  # NAME COMMAND...: prints the wall seconds
  local name=$1; shift
  rm -f "$work/$name".*
  local start end
  start=$(date +%s.%N)
  "$@" --out "$work/$name" > "$work/$name.log"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
cores=$(nproc)
t_all=$(run all "$f" "${args[@]}" --threads "$cores")
t_one=$(run rank1 mpirun -np 1 "$f" "${args[@]}" --threads 1)
t_two=$(run rank2 mpirun -np 2 "$f" "${args[@]}" --threads 1)
for ext in jsonl csv json midpoints.csv; do
  cmp -s "$work/all.$ext" "$work/rank1.$ext" && cmp -s "$work/all.$ext" "$work/rank2.$ext" || { echo "FAIL: $ext differs between runs"; exit 1; }
done
rows=$(($(wc -l < "$work/all.jsonl") - 1))
echo "Walking Noise sweep, mlp, Fashion-MNIST 10k images, 4 layers x 25 sigma x 5 trials: $rows points ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
printf "one process, %d threads:  %8.1f s\n" "$cores" "$t_all"
printf "MPI 1 rank x 1 thread:    %8.1f s\n" "$t_one"
printf "MPI 2 ranks x 1 thread:   %8.1f s   speedup 1 -> 2 ranks: %.2fx\n" "$t_two" "$(awk -v a="$t_one" -v b="$t_two" 'BEGIN { print a / b }')"
echo "all three runs wrote identical files"
