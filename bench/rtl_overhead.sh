#!/usr/bin/env bash
# Cost of the RTL level against the behavioural model on the same layers, in one run: evaluates
# MODEL on the first N Fashion-MNIST test images with int8_mac_array (and the approximate unit)
# at --level functional and --level rtl, one thread each (the RTL runs in-line), and prints the
# ratio, for both RTL engines (direct: the C++ model stepped per clock; systemc: the SystemC model);
# then the raw co-simulation speed of each RTL module (`faultline cosim`, no back-pressure), both engines.
# Usage: bench/rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]
set -euo pipefail
faultline=${1:?usage: rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]}
model=${2:?usage: rtl_overhead.sh FAULTLINE MODEL.onnx [IMAGES]}
images=${3:-500}
run() {  # preset level [options] → seconds
  "$faultline" eval --model "$model" --hw "$1" --level "$2" "${@:3}" --threads 1 --limit "$images" --layer-errors false 2>/dev/null |
    sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p'
}
printf '%-24s %14s %12s %8s %14s %8s\n' preset "functional s" "rtl direct s" ratio "rtl systemc s" ratio
for preset in int8_mac_array int8_approx_mac_array; do
  f=$(run "$preset" functional)
  d=$(run "$preset" rtl --rtl-engine direct)
  c=$(run "$preset" rtl --rtl-engine systemc)
  printf '%-24s %14.3f %12.3f %8.1f %14.3f %8.1f\n' "$preset" "$f" "$d" "$(awk -v a="$d" -v b="$f" 'BEGIN { print a / b }')" \
    "$c" "$(awk -v a="$c" -v b="$f" 'BEGIN { print a / b }')"
done
echo "($images images, LeNet-5, 1 thread; the RTL level's results equal the functional level's)"
echo
for rtl in mac_array approx_mac_array; do
  for engine in direct systemc; do
    "$faultline" cosim --rtl "$rtl" --engine "$engine" --vectors 200000 --weight-sets 1 --stimulus uniform --backpressure-pattern none --no-reset |
      sed -n "s/^/$rtl ($engine): /p" | grep -E "cycles|mismatching"
  done
done
