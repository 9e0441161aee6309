#!/usr/bin/env bash
# Issue 18's speed table in one run on this machine: every functional hardware preset against
# ideal inference (LeNet-5 MODEL, the 10k Fashion-MNIST test images, 1 trial, THREADS threads),
# each pair run back to back and timed best of 3, with per-layer error measurement off (the
# model's own cost) and on (the default; its cost on top of the same preset); then ideal inference
# against PyTorch (bench/compare_pytorch.py, the same network and threads), and a residual CNN
# exported by PyTorch, inference and training, against PyTorch (bench/compare_pytorch_cnn.py).
# Prints the tables.
# Usage: bench/speed.sh FAULTLINE MODEL.onnx [THREADS]
set -euo pipefail
faultline=${1:?usage: speed.sh FAULTLINE MODEL.onnx [THREADS]}
model=${2:?usage: speed.sh FAULTLINE MODEL.onnx [THREADS]}
threads=${3:-$(nproc)}
here=$(dirname "$0")
seconds() {  # hw errors -> wall seconds of the evaluation (as eval reports it)
  "$faultline" eval --model "$model" --hw "$1" --threads "$threads" --layer-errors "$2" | sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p'
}
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
goal() {
  case $1 in
    walking_noise_multiplicative|rram_crossbar|pcm_crossbar) echo "2x";;
    *) echo "3x";;
  esac
}
printf '%-30s %9s %9s %9s %7s %14s %6s\n' preset "ideal s" "preset s" "x ideal" goal "errors on/off" goal
for preset in walking_noise_additive walking_noise_multiplicative rram_memory rram_crossbar pcm_crossbar bss2_analog int8_digital \
              int8_approx_mac_array weight_variation vta ipu_gc2 ipu_gc200; do
  ideal="" off="" on=""
  for _ in 1 2 3; do
    ideal=$(min "$(seconds ideal false)" "$ideal")
    off=$(min "$(seconds "$preset" false)" "$off")
    on=$(min "$(seconds "$preset" true)" "$on")
  done
  printf '%-30s %9.3f %9.3f %9s %7s %14s %6s\n' "$preset" "$ideal" "$off" "$(ratio "$off" "$ideal")" "$(goal "$preset")" "$(ratio "$on" "$off")" 1.3x
done
echo "($threads threads, 1 trial of 10k images, programming included, best of 3 per cell)"
echo
/usr/bin/python3 "$here/compare_pytorch.py" "$faultline" "$model" --threads "$threads" | tail -4
echo
# A CNN exported by PyTorch with more channels (3x3 convolutions, residual adds, global average
# pooling): inference, and one epoch of the same Adam training (CNN_WIDTH, TRAIN_IMAGES).
/usr/bin/python3 "$here/compare_pytorch_cnn.py" "$faultline" --threads "$threads" --width "${CNN_WIDTH:-16}" \
  --train-images "${TRAIN_IMAGES:-3200}" --repeat 3 | tail -7
echo
/usr/bin/python3 "$here/compare_pytorch_cnn.py" "$faultline" --threads "$threads" --arch lenet5 --train-images "${TRAIN_IMAGES:-3200}" --repeat 3 | tail -7
