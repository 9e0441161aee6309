#!/usr/bin/env bash
# Cost of the RTL level against the behavioural model on the same layers, in one run: evaluates
# MODEL on the first N Fashion-MNIST test images with int8_mac_array (and the approximate unit)
# at --level functional and --level rtl, one thread each (the RTL runs in-line), and prints the
# ratio; then the raw co-simulation speed of each RTL module (`faultline cosim`, no back-pressure).
# Usage: bench/rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]
set -euo pipefail
faultline=${1:?usage: rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]}
model=${2:?usage: rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]}
images=${3:-500}
run() {  # preset level → seconds
  "$faultline" eval --model "$model" --hw "$1" --level "$2" --threads 1 --limit "$images" --layer-errors false 2>/dev/null |
    sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p'
}
printf '%-24s %14s %10s %9s\n' preset "functional s" "rtl s" ratio
for preset in int8_mac_array int8_approx_mac_array; do
  f=$(run "$preset" functional)
  r=$(run "$preset" rtl)
  printf '%-24s %14.3f %10.3f %9.1f\n' "$preset" "$f" "$r" "$(awk -v a="$r" -v b="$f" 'BEGIN { print a / b }')"
done
echo "($images images, LeNet-5, 1 thread; the RTL level's results equal the functional level's)"
echo
for rtl in mac_array approx_mac_array; do
  "$faultline" cosim --rtl "$rtl" --vectors 200000 --weight-sets 1 --backpressure 0 --no-reset | sed -n "s/^/$rtl: /p" | grep -E "cycles|mismatching"
done
