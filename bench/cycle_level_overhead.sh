#!/usr/bin/env bash
# Cost of the cycle level (SystemC) against the functional level, in one run on the same machine:
# evaluates MODEL on the 10k Fashion-MNIST test images on each preset that has a cycle-level
# model, once with --level functional and once with --level cycle (1 trial each, per-layer error
# measurement off), and prints the wall-time ratio (goal: at most 10) and the simulated MAC
# operations per second of wall time. Usage: bench/cycle_level_overhead.sh FAULTLINE MODEL.onnx [THREADS]
set -euo pipefail
faultline=${1:?usage: cycle_level_overhead.sh FAULTLINE MODEL.onnx [THREADS]}
model=${2:?usage: cycle_level_overhead.sh FAULTLINE MODEL.onnx [THREADS]}
threads=${3:-$(nproc)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # preset level → prints seconds; the JSON lands in $tmp/preset-level.json
  "$faultline" eval --model "$model" --hw "$1" --level "$2" --threads "$threads" --layer-errors false --out "$tmp/$1-$2.json" |
    sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p'
}
printf '%-16s %12s %12s %9s %16s %16s\n' preset "functional s" "cycle s" "ratio" "simulated MACs" "MACs/s (wall)"
for preset in rram_memory rram_crossbar pcm_crossbar bss2_analog ipu_gc200 ipu_gc2; do
  f=$(run "$preset" functional)
  c=$(run "$preset" cycle)
  macs=$(/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(l['counters'].get('macs',0) for l in d['layers']))" "$tmp/$preset-cycle.json")
  printf '%-16s %12.3f %12.3f %9.2f %16.4g %16.4g\n' "$preset" "$f" "$c" "$(awk -v a="$c" -v b="$f" 'BEGIN { print a / b }')" "$macs" \
    "$(awk -v m="$macs" -v s="$c" 'BEGIN { print m / s }')"
done
echo "($threads threads, 1 trial of 10k images each, programming included; the cycle level's values are bit-identical)"
