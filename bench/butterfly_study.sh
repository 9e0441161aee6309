#!/bin/bash
# Butterfly and Monarch layers on the IPU and on a crossbar (issue 16; seed: Shekofteh, Alles,
# Fröning, arXiv 2309.08946): Fashion-MNIST MLPs 784-w-w-w-10 whose two hidden w x w layers are
# dense, butterfly (Dao et al. 1903.05895) or Monarch (Dao et al. 2204.00595), for each width:
# parameters of the hidden layers and compression against dense; accuracy (ideal); accuracy on
# the IPU model in fp16 with fp32 and with fp16 partials, rounded to nearest and stochastically;
# whether the whole model fits GC2 and GC200 tile memory and on how many tiles; cycles per batch
# of 16 on GC200 (the plans' supersteps, which the cycle level reproduces); and accuracy on the
# rram_crossbar preset (does a layer of tiny blocks suffer more from crossbar noise than a dense one?).
#
# Every network is trained by `faultline train` with the same seed, epochs and images; every
# evaluation uses the 10 000 test images. Results in OUT/*.json, the table by
# bench/butterfly_summary.py.
#
# Usage: bench/butterfly_study.sh [BUILD_DIR] [OUT] [EPOCHS] [TRAIN_IMAGES] [WIDTHS] [TRIALS]
#   defaults: build, build/results/butterfly, 5 epochs, 20000 images, "256 1024 4096", 5 trials
# Environment: ARCHS (default "mlp butterfly_mlp monarch_mlp"); PLAN_ONLY, names such as
# "mlp-4096" whose accuracy is not measured (too slow for the machine at hand): their model is
# built untrained (one step on 64 images) for the parameter count and the IPU plans only.
set -euo pipefail
build=${1:-build}
out=${2:-build/results/butterfly}
epochs=${3:-5}
limit=${4:-20000}
widths=${5:-256 1024 4096}
trials=${6:-5}
faultline=$build/apps/faultline
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
start=$(date +%s)
for width in $widths; do
  for arch in ${ARCHS:-mlp butterfly_mlp monarch_mlp}; do
    name=$arch-$width
    model=$out/$name.onnx
    plan_only=no
    for p in ${PLAN_ONLY:-}; do [ "$p" = "$name" ] && plan_only=yes; done
    if [ "$plan_only" = yes ]; then
      [ -f "$model" ] || "$faultline" train --arch "$arch" --width "$width" --epochs 1 --limit 64 --seed 1 --threads 2 --out "$model" > "$out/$name.train.txt"
    else
      [ -f "$model" ] || "$faultline" train --arch "$arch" --width "$width" --epochs "$epochs" --limit "$limit" --seed 1 --threads 2 --out "$model" > "$out/$name.train.txt"
    fi
    ev() {  # ev TAG ARGS...
      local tag=$1
      shift
      [ -f "$out/$name.$tag.json" ] || "$faultline" eval --model "$model" --data fashion-mnist --threads 2 --seed 1 --out "$out/$name.$tag.json" "$@" > /dev/null
    }
    if [ "$plan_only" = no ]; then
    ev ideal --hw ideal --trials 1
    ev fp16-nearest --hw ipu_gc200 --set units.ipu.rounding=nearest --trials 1
    ev fp16-stochastic --hw ipu_gc200 --trials "$trials"
    ev fp16p16-nearest --hw ipu_gc200 --set units.ipu.precision=fp16.16 --set units.ipu.rounding=nearest --trials 1
    ev fp16p16-stochastic --hw ipu_gc200 --set units.ipu.precision=fp16.16 --trials "$trials"
    ev crossbar --hw rram_crossbar --trials "$trials"
    fi
    for chip in ipu_gc2 ipu_gc200; do
      [ -f "$out/$name.$chip.plan.json" ] || "$faultline" ipu plan --model "$model" --hw "$chip" --out "$out/$name.$chip.plan.json" > "$out/$name.$chip.plan.txt" 2>&1 \
        || echo "$name on $chip: $(tail -1 "$out/$name.$chip.plan.txt")"
    done
    echo "$name done at $(( $(date +%s) - start )) s"
  done
done
/usr/bin/python3 "$here/butterfly_summary.py" "$out" "$widths" | tee "$out/summary.md"
echo "study: $(( $(date +%s) - start )) s"
