#!/bin/bash
# A network on VTA at its three levels, timed in the same run: LeNet-5 (or MODEL) on the `vta`
# preset at the functional level, at the cycle level (every read's program through the SystemC
# VTA) and at the RTL level (every GEMM on the Verilated mac_array, --check off), one thread each,
# best of 3; and int8_digital at the functional level as the reference the issue's goal names.
# Prints images per second, the ratios (goals: functional within 5x of int8_digital, cycle within
# 10x and RTL within 50x of functional) and checks that the three levels give the same accuracy.
#
# Usage: bench/vta_network_levels.sh MODEL.onnx [BUILD_DIR] [IMAGES]   (default build, 500 images)
set -euo pipefail
model=$1
build=${2:-build}
images=${3:-500}
faultline=$build/apps/faultline

best_of_3() {  # prints "seconds accuracy" of the fastest of three runs of the eval arguments
  local best="" acc=""
  for _ in 1 2 3; do
    local out t
    out=$("$faultline" eval --model "$model" --limit "$images" --threads 1 --seed 1 --layer-errors false "$@")
    t=$(sed -n 's/^\([0-9.]*\) s, [0-9]* images\/s.*/\1/p' <<< "$out" | tail -1)
    acc=$(sed -n 's/^hardware [^:]*: accuracy \([0-9.]*\) %.*/\1/p' <<< "$out" | tail -1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best $acc"
}

read -r t_int8 a_int8 < <(best_of_3 --hw int8_digital)
read -r t_fun a_fun < <(best_of_3 --hw vta)
read -r t_cyc a_cyc < <(best_of_3 --hw vta --level cycle)
read -r t_rtl a_rtl < <(best_of_3 --hw vta --set units.vta.impl=rtl:mac_array --level rtl)
awk -v n="$images" -v i="$t_int8" -v f="$t_fun" -v c="$t_cyc" -v r="$t_rtl" -v ai="$a_int8" -v af="$a_fun" -v ac="$a_cyc" -v ar="$a_rtl" 'BEGIN {
  printf "%d images, 1 thread, best of 3 (evaluation time as eval reports it)\n", n
  printf "%-28s %9s %11s %10s %9s\n", "level", "seconds", "images/s", "ratio", "accuracy"
  printf "%-28s %9.3f %11.0f %10s %8.2f%%\n", "int8_digital functional", i, n / i, "", ai
  printf "%-28s %9.3f %11.0f %9.1fx %8.2f%%   (to int8_digital; goal 5x)\n", "vta functional", f, n / f, f / i, af
  printf "%-28s %9.3f %11.0f %9.1fx %8.2f%%   (to vta functional; goal 10x)\n", "vta cycle", c, n / c, c / f, ac
  printf "%-28s %9.3f %11.0f %9.1fx %8.2f%%   (to vta functional; goal 50x)\n", "vta rtl (mac_array)", r, n / r, r / f, ar
  if (af != ac || af != ar) { print "FAIL: the levels disagree on the accuracy"; exit 1 }
}'
