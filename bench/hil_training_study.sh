#!/usr/bin/env bash
# Recorded study for `faultline train --noise/--hw` (issues 6 and 19), repeated over training seeds:
#  (1) Walking Noise (Borras, Klein, Fröning, arXiv 2212.10430): an MLP trained with additive noise
#      σ on every layer keeps more accuracy under that noise than a plainly trained one.
#  (2) Ordering effects (Kuhn, Klein, Fröning 2023): on bss2_analog with the effects that make the
#      result depend on operand order (membrane saturation, position-dependent gain), an MLP trained
#      with that model in the loop against one trained on the non-ordered variant (the same array
#      without saturation and position gain), both evaluated on the ordered hardware — at the
#      preset's gain 0.01 and at 0.02 and 0.03 (the gain scales the membrane's partial sums toward
#      the saturation bound, so it sets how much ordering matters).
#  (3) At gain 0.03, the secant backward against the straight-through one for the ordered model.
# Every arm is trained with seeds 1..SEEDS (`--seed` sets initialization and shuffling); every
# network is evaluated with TRIALS Monte Carlo trials, evaluation seed 7 for all (the same hardware
# noise draws for every arm, so that differences between arms are paired). One eval JSON per
# network and condition goes to WORK/evals/, listed in WORK/manifest.csv; bench/seed_study_summary.py
# turns them into the table (per arm: mean, std and 95 % CI over seeds of each network's mean over
# its trials; paired differences between arms with their CIs) and WORK/seed_study.json, which
# `faultline report` draws as strip plots.
# Resumable: a network or evaluation whose file exists is not redone (delete WORK to start over).
# No keyword-spotting dataset is packaged in Debian (checked: apt-cache search), so the study uses
# Fashion-MNIST only.
# Usage: bench/hil_training_study.sh [BUILD_DIR] [EPOCHS] [TRIALS] [SEEDS] [GAINS] [WORK]
#        defaults: build 3 5 5 "0.01 0.02 0.03" BUILD_DIR/hil_study; about 7 min per seed on 2 cores
# Environment: PARTS, the findings to run (default "walking ordering ste"; the main job runs a
# short "walking" study).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
epochs=${2:-3}
trials=${3:-5}
seeds=${4:-5}
gains=${5:-0.01 0.02 0.03}
f=$build/apps/faultline
work=${6:-$build/hil_study}
parts=${PARTS:-walking ordering ste}
has() { [[ " $parts " == *" $1 "* ]]; }
mkdir -p "$work/nets" "$work/evals"
sigma=2
# shellcheck source=bench/seed_study_lib.sh
source bench/seed_study_lib.sh
manifest=$work/manifest.csv
manifest_start "$manifest"
ordered() { echo "--hw bss2_analog --set units.mac.gain=$1"; }
unordered() { echo "--hw bss2_analog --set units.mac.gain=$1 --set units.mac.saturation=0 --set units.mac.position_gain_slope=0"; }

train() {  # NAME SEED ARGS...
  once "$work/nets/$1-s$2.onnx" "$f" train --arch mlp --epochs "$epochs" --batch-size 128 --seed "$2" "${@:3}" > "$work/nets/$1-s$2.log"
}
evaluate() {  # ARM CONDITION SEED NET ARGS...
  once "$work/evals/$1-$2-s$3.json" "$f" eval --model "$work/nets/$4-s$3.onnx" "${@:5}" --trials "$trials" --seed 7 > /dev/null
  manifest_row "$manifest" "$1" "$2" "$3" "evals/$1-$2-s$3.json"
}

for seed in $(seq 1 "$seeds"); do
  echo "== seed $seed ($(date +%T))"
  train plain "$seed"
  if has walking; then
    train noisy "$seed" --noise walking_noise_additive --set units.noise.sigma_add=$sigma
    evaluate plain clean "$seed" plain
    evaluate plain "additive sigma=$sigma" "$seed" plain --hw walking_noise_additive --set units.noise.sigma_add=$sigma
    evaluate noise-aware clean "$seed" noisy
    evaluate noise-aware "additive sigma=$sigma" "$seed" noisy --hw walking_noise_additive --set units.noise.sigma_add=$sigma
  fi
  if has ordering; then
    for g in $gains; do
      # shellcheck disable=SC2046
      train "ordered-g$g" "$seed" $(ordered "$g") --backward secant
      # shellcheck disable=SC2046
      train "unordered-g$g" "$seed" $(unordered "$g") --backward secant
      # shellcheck disable=SC2046
      evaluate plain "ordered gain=$g" "$seed" plain $(ordered "$g")
      # shellcheck disable=SC2046
      evaluate plain "non-ordered gain=$g" "$seed" plain $(unordered "$g")
      # shellcheck disable=SC2046
      evaluate "trained non-ordered" "ordered gain=$g" "$seed" "unordered-g$g" $(ordered "$g")
      # shellcheck disable=SC2046
      evaluate "trained ordered" "ordered gain=$g" "$seed" "ordered-g$g" $(ordered "$g")
    done
  fi
  if has ste; then
    # shellcheck disable=SC2046
    train ordered-ste-g0.03 "$seed" $(ordered 0.03) --backward ste
    # shellcheck disable=SC2046
    evaluate "trained ordered (straight-through)" "ordered gain=0.03" "$seed" ordered-ste-g0.03 $(ordered 0.03)
  fi
done
echo "MLP on Fashion-MNIST, $epochs epoch(s), seeds 1..$seeds; each network on the 10k test images with $trials Monte Carlo trials"
compares=()
has walking && compares+=(--compare "noise-aware|plain|additive sigma=$sigma")
if has ordering; then
  for g in $gains; do
    # What ordering costs a float-trained network, then what each training recovers of it.
    compares+=(--compare "plain|plain|ordered gain=$g|non-ordered gain=$g")
    compares+=(--compare "trained ordered|trained non-ordered|ordered gain=$g" --compare "trained ordered|plain|ordered gain=$g")
  done
fi
has ste && has ordering && [[ " $gains " == *" 0.03 "* ]] && compares+=(--compare "trained ordered|trained ordered (straight-through)|ordered gain=0.03")
/usr/bin/python3 bench/seed_study_summary.py "$work" "${compares[@]}" \
  --title "Hardware-in-the-loop and noise-aware training, MLP, $epochs epoch(s), $seeds training seeds"
