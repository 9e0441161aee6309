#!/usr/bin/env bash
# The main job: train LeNet-5 on Fashion-MNIST (or reuse the cached model) and evaluate it on
# every shipped hardware preset with Monte Carlo trials. Results land in build/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
echo "installing what is missing and building (log: build/setup.log)..."
bash .ci/setup.sh build -DFAULTLINE_USER_RTL= > build/setup.log 2>&1 || { tail -n 50 build/setup.log; exit 1; }

faultline=build/apps/faultline
train_args=(--arch lenet5 --epochs 15 --batch-size 128 --lr 2e-3 --weight-decay 5e-4 --seed 1)
# The cache key covers the training options and the engine's and models' sources (training runs on the
# inference graph, so any of them can change its bits): a changed engine retrains.
key=$(printf '%s ' "${train_args[@]}" | cat - nn/*.cpp nn/*.h models/*.cpp models/*.h | sha256sum | cut -c1-16)
model=build/cache/lenet5-$key.onnx
mkdir -p build/cache build/results
if [ -f "$model" ]; then
  echo "reusing $model"
else
  echo "training lenet5 (${train_args[*]}) on Fashion-MNIST..."
  start=$(date +%s)
  "$faultline" train "${train_args[@]}" --out "$model.partial"
  mv "$model.partial" "$model"
  echo "training took $(( $(date +%s) - start )) s on $(nproc) threads"
fi
echo
# Accuracy on every shipped hardware preset: Monte Carlo trials re-program the hardware each time.
presets=(ideal walking_noise_additive walking_noise_multiplicative rram_memory rram_crossbar pcm_crossbar bss2_analog int8_digital
         int8_approx_mac_array weight_variation vta vta_sram_faults ipu_gc200 ipu_gc2)
hw_args=()
for p in "${presets[@]}"; do hw_args+=(--hw "$p"); done
"$faultline" eval --model "$model" --data fashion-mnist "${hw_args[@]}" --trials 5 --seed 1 --out build/results/lenet5-presets.json
echo
# The same network at the cycle level: bit-identical accuracy, plus cycles, time and energy per layer
# (VTA: every read's program through the SystemC fetch/load/compute/store modules; IPU: each layer's
# plan as bulk-synchronous supersteps over the tiles; neither has an energy model).
"$faultline" eval --model "$model" --data fashion-mnist --hw rram_memory --hw rram_crossbar --hw bss2_analog --hw vta --hw ipu_gc200 --level cycle \
  --trials 1 --seed 1 --out build/results/lenet5-cycle.json
echo
# And on RTL: each shipped module against its twin under every stimulus and back-pressure pattern,
# then the integer products of every layer of the whole test set through the Verilated mac_array
# and approx_mac_array (direct engine, in-line on one thread), equal to the functional level, with
# each module's twin checked beside it on every tile (--check).
for module in mac_array approx_mac_array; do "$faultline" cosim --rtl "$module" --vectors 20000 --seed 1; echo; done
"$faultline" eval --model "$model" --data fashion-mnist --hw int8_mac_array --hw int8_approx_mac_array --level rtl --check \
  --seed 1 --out build/results/lenet5-rtl.json
echo
# VTA: a double-buffered, convolution-like program (200 input tiles, 205 k GEMM micro-ops) at the
# functional, cycle (SystemC: fetch/load/compute/store, token queues, AXI DRAM) and RTL levels;
# the script checks that all three write the same DRAM image and prints cycles and stalls.
bash bench/vta_levels.sh build 200
echo
# LeNet-5 on VTA as program folders (one per layer, with the calibrated network's int8 inputs of
# the first image); conv2's runs alone at the cycle level to the image the network's run left.
"$faultline" vta compile --model "$model" --out build/results/vta-lenet5
"$faultline" vta run --program build/results/vta-lenet5/conv2 --level cycle
cmp build/results/vta-lenet5/conv2/dram.out.bin build/results/vta-lenet5/conv2/expected.dram.out.bin && echo "conv2 alone: same DRAM image"
echo
# LeNet-5 on VTA at the RTL level: every GEMM of every layer's programs on the Verilated mac_array
# (--check: each micro-op against the exact product), the accuracy equal to the functional level's.
"$faultline" eval --model "$model" --data fashion-mnist --hw vta --set units.vta.impl=rtl:mac_array --level rtl --check --limit 1000 \
  --seed 1 --out build/results/lenet5-vta-rtl.json
echo
# Unreliable VTA: accuracy against the bit error rate of each memory (README, "Whole networks on VTA").
bash bench/vta_ber_sweep.sh "$model" build "build/results/vta-ber-$key" 1000 2 log:1e-8:1e-3:6
echo
# VTA schedules auto-tuned on the cycle level (issue 15; README, "Tuning VTA schedules"): LeNet-5's
# convolutions exhaustively, then the tuned description beside the default one at the cycle level
# (the same accuracy, fewer cycles); ResNet-18's last stage (bench/resnet18_vta_layers.txt)
# exhaustively, then by the cost-model strategies on those measurements. (bench/vta_tune_study.sh
# runs the whole study over 10 seeds.) The logs are removed first: they are keyed by the VTA
# configuration and timing, not by the simulator's version.
rm -rf build/results/vta-tune-*
"$faultline" tune --model "$model" --layers 'conv*' --out build/results/vta-tune-lenet5
"$faultline" eval --model "$model" --data fashion-mnist --hw vta --hw build/results/vta-tune-lenet5/tuned.yaml --level cycle --limit 1000 \
  --seed 1 --out build/results/lenet5-vta-tuned.json
for strategy in exhaustive xgb validity; do
  "$faultline" tune --shapes bench/resnet18_vta_layers.txt --layers 'layer4.*' --strategy "$strategy" --seed 1 \
    --log build/results/vta-tune-resnet18.log --out "build/results/vta-tune-resnet18-$strategy"
done
echo
# IPU tiles (issue 16; README, "IPU tiles"): LeNet-5 planned over GC2's tiles (splits, memory per
# tile with the whole model resident, exchange, supersteps, cycles); then MLPs whose two hidden
# 1024 x 1024 layers are butterfly or Monarch factorizations (Reshape, Transpose, batched MatMul
# with one substrate block per small matrix), trained briefly, on the IPU in fp16 with stochastic
# rounding and on the RRAM crossbar, with their plans. (bench/butterfly_study.sh runs the study.)
"$faultline" ipu plan --model "$model" --hw ipu_gc2 --out build/results/lenet5-ipu-gc2-plan.json
for arch in butterfly_mlp monarch_mlp; do
  "$faultline" train --arch "$arch" --width 1024 --epochs 2 --limit 20000 --seed 1 --out "build/results/$arch-1024.onnx" | tail -1
  "$faultline" eval --model "build/results/$arch-1024.onnx" --data fashion-mnist --hw ideal --hw ipu_gc200 --hw rram_crossbar --trials 3 --seed 1 \
    --out "build/results/$arch-1024.json" | tail -6
  "$faultline" ipu plan --model "build/results/$arch-1024.onnx" --hw ipu_gc200 --out "build/results/$arch-1024-ipu-plan.json" | tail -2
done
echo
# From Python and PyTorch (issue 17; python/README.md): a CNN trained in PyTorch, measured on the
# RRAM crossbar with 5x its output noise (where a float-trained CNN loses about 16 points),
# fine-tuned with its Conv2d/Linear layers running on that crossbar (faultline.torch) and, as the
# control, with plain layers, and measured again with the same Monte Carlo trials.
PYTHONPATH=build/python /usr/bin/python3 python/examples/finetune_on_crossbar.py --limit 20000 --epochs 2 --finetune-epochs 1 --trials 3 \
  --set units.xbar.out_noise=0.5 --out build/results/finetune
echo
# Walking Noise (Borras, Klein, Fröning, arXiv 2212.10430): additive noise on one layer's output at
# a time, sigma log-spaced, and per layer the midpoint noise level (bisected). Rows are appended to
# the .jsonl as points finish: rerunning this script resumes a killed sweep (the file name carries
# the model's cache key, so a retrained model starts a new log).
"$faultline" sweep --model "$model" --data fashion-mnist --walking additive --sigma log:1e-2:1e2:17 --trials 3 --seed 1 \
  --layer-errors false --out "build/results/lenet5-$key-walking-additive"
echo
# A finding repeated over training seeds (issue 19): an MLP trained with additive Walking Noise
# (sigma 2 on every layer) against a plainly trained one, 5 training seeds each (1 epoch, 3
# trials per network); per arm the 95 % CI over seeds and the paired difference with its CI
# (bench/hil_training_study.sh runs the whole study: 3 epochs, and the ordering findings).
rm -rf build/results/seed-study
PARTS=walking bash bench/hil_training_study.sh build 1 3 5 "" build/results/seed-study | tail -9
echo
# The report of the study: accuracy per preset with confidence intervals, the cycle level's
# totals, accuracy vs noise per layer and the midpoints, as Markdown with PNG/SVG plots.
"$faultline" report build/results/lenet5-presets.json build/results/lenet5-cycle.json build/results/lenet5-rtl.json \
  "build/results/lenet5-$key-walking-additive.json" "build/results/vta-ber-$key-acc.json" "build/results/vta-ber-$key-wgt.json" \
  "build/results/vta-ber-$key-uop.json" "build/results/vta-ber-$key-inp.json" "build/results/vta-ber-$key-dram.json" \
  build/results/lenet5-vta-tuned.json build/results/vta-tune-lenet5/tune.json build/results/vta-tune-resnet18-exhaustive/tune.json \
  build/results/vta-tune-resnet18-xgb/tune.json build/results/vta-tune-resnet18-validity/tune.json \
  build/results/lenet5-ipu-gc2-plan.json build/results/butterfly_mlp-1024.json build/results/monarch_mlp-1024.json \
  build/results/butterfly_mlp-1024-ipu-plan.json build/results/monarch_mlp-1024-ipu-plan.json build/results/finetune/finetune.json \
  build/results/seed-study/seed_study.json --out build/results/report
