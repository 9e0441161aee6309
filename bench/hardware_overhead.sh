#!/usr/bin/env bash
# Cost of the functional hardware models against ideal inference, in one run on the same machine:
# evaluates MODEL on the 10k Fashion-MNIST test images with the ideal preset and with each noisy
# preset (3 trials each, per-layer error measurement off so that only the model's own cost is
# timed) and prints the throughput ratio. Usage: bench/hardware_overhead.sh FAULTLINE MODEL.onnx [THREADS]
set -euo pipefail
faultline=${1:?usage: hardware_overhead.sh FAULTLINE MODEL.onnx [THREADS]}
model=${2:?usage: hardware_overhead.sh FAULTLINE MODEL.onnx [THREADS]}
threads=${3:-$(nproc)}
seconds() {
  "$faultline" eval --model "$model" --hw "$1" --trials 3 --threads "$threads" --layer-errors false |
    sed -n 's/^\([0-9.]*\) s, .*images\/s.*/\1/p'
}
ideal=$(seconds ideal)
printf '%-30s %8s %8s\n' preset seconds "x ideal"
printf '%-30s %8.3f %8.2f\n' ideal "$ideal" 1
for preset in walking_noise_additive walking_noise_multiplicative int8_digital rram_memory rram_crossbar pcm_crossbar bss2_analog; do
  t=$(seconds "$preset")
  printf '%-30s %8.3f %8.2f\n' "$preset" "$t" "$(awk -v a="$t" -v b="$ideal" 'BEGIN { print a / b }')"
done
echo "($threads threads, 3 trials of 10k images each, programming included)"
