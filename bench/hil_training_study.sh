#!/usr/bin/env bash
# Recorded study for `faultline train --noise/--hw` (issue 6), two findings:
#  (1) Walking Noise (Borras, Klein, Fröning, arXiv 2212.10430): an MLP trained with additive noise
#      σ on every layer keeps more accuracy under that noise than a plainly trained one.
#  (2) Ordering effects (Kuhn, Klein, Fröning 2023): on bss2_analog with the effects that make the
#      result depend on operand order (membrane saturation, position-dependent gain), an MLP trained
#      with that model in the loop beats one trained on the non-ordered variant (the same array
#      without saturation and position gain), both evaluated on the ordered hardware.
# The preset's gain is raised to 0.03 so that partial sums reach the saturation bound (at 0.01 a
# float-trained MLP loses < 1 point to ordering, at 0.03 about 20). Both hardware-trained networks
# use the secant backward (`--backward secant`); the straight-through row shows why: through
# membrane saturation, straight-through gradients do not train (measured: 41 % vs 66 %).
# Usage: bench/hil_training_study.sh [BUILD_DIR] [EPOCHS] [TRIALS]   (prints a table; ~10 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
epochs=${2:-3}
trials=${3:-5}
f=$build/apps/faultline
work=$build/hil_study
mkdir -p "$work"
sigma=2
ordered=(--hw bss2_analog --set units.mac.gain=0.03)
unordered=(--hw bss2_analog --set units.mac.gain=0.03 --set units.mac.saturation=0 --set units.mac.position_gain_slope=0)
common=(--arch mlp --epochs "$epochs" --batch-size 128 --seed 1)
acc() { "$f" eval --model "$1" "${@:2}" --trials "$trials" --seed 7 | sed -n 's/^hardware [^:]*: accuracy \([0-9.]*\) % ± \([0-9.]*\).*CI \[\([0-9., ]*\)\].*/\1 % ± \2 (95 % CI [\3] %)/p'; }
"$f" train "${common[@]}" --out "$work/plain.onnx" > /dev/null
"$f" train "${common[@]}" --noise walking_noise_additive --set units.noise.sigma_add=$sigma --out "$work/noisy.onnx" > /dev/null
"$f" train "${common[@]}" "${ordered[@]}" --backward secant --out "$work/ordered.onnx" > /dev/null
"$f" train "${common[@]}" "${unordered[@]}" --backward secant --out "$work/unordered.onnx" > /dev/null
"$f" train "${common[@]}" "${ordered[@]}" --backward ste --out "$work/ordered_ste.onnx" > /dev/null
echo "MLP on Fashion-MNIST, $epochs epochs; accuracy on the 10k test images, $trials Monte Carlo trials, 95 % CI (Student t)"
echo "(1) additive Walking Noise sigma=$sigma on every layer"
echo "  trained plainly:        clean $(acc "$work/plain.onnx")"
echo "                          noisy $(acc "$work/plain.onnx" --hw walking_noise_additive --set units.noise.sigma_add=$sigma)"
echo "  trained with the noise: clean $(acc "$work/noisy.onnx")"
echo "                          noisy $(acc "$work/noisy.onnx" --hw walking_noise_additive --set units.noise.sigma_add=$sigma)"
echo "(2) bss2_analog (gain 0.03) with ordering effects, evaluated on the ordered hardware (hardware-trained: --backward secant)"
echo "  trained plainly:                   $(acc "$work/plain.onnx" "${ordered[@]}")"
echo "  trained on the non-ordered model:  $(acc "$work/unordered.onnx" "${ordered[@]}")"
echo "  trained on the ordered model:      $(acc "$work/ordered.onnx" "${ordered[@]}")"
echo "  (trained on the ordered model, straight-through backward: $(acc "$work/ordered_ste.onnx" "${ordered[@]}"))"
