#!/usr/bin/env bash
# The PyTorch fine-tuning example (python/examples/finetune_on_crossbar.py, issue 17) repeated over
# training seeds (issue 19): per seed a CNN trained in PyTorch, measured on the hardware, fine-tuned
# with plain layers (the control) and with its layers on the hardware, measured again (the same
# hardware draws for every arm and seed). bench/seed_study_summary.py gives per arm the 95 % CI
# over seeds and the paired differences: fine-tuned on the hardware − PyTorch-trained, and
# fine-tuned on the hardware − fine-tuned plain (what training on the hardware adds over training
# longer). Resumable per seed (a seed whose folder has finetune.json is kept).
# Usage: bench/finetune_seed_study.sh [BUILD_DIR] [WORK] [SEEDS] [TRIALS] [EXAMPLE OPTIONS...]
#   defaults: build, build/results/finetune-seeds, 5, 3, then the main job's run:
#   --limit 20000 --epochs 2 --finetune-epochs 1 --set units.xbar.out_noise=0.5
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-$build/results/finetune-seeds}
seeds=${3:-5}
trials=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
options=("$@")
((${#options[@]})) || options=(--limit 20000 --epochs 2 --finetune-epochs 1 --set units.xbar.out_noise=0.5)
mkdir -p "$work"
# shellcheck source=bench/seed_study_lib.sh
source bench/seed_study_lib.sh
manifest=$work/manifest.csv
manifest_start "$manifest"
start=$(date +%s)
for seed in $(seq 1 "$seeds"); do
  out=$work/s$seed
  if [ ! -f "$out/finetune.json" ]; then
    PYTHONPATH=$build/python /usr/bin/python3 python/examples/finetune_on_crossbar.py --seed "$seed" --trials "$trials" --out "$out" \
      "${options[@]}" | tail -1
  fi
  for pair in "PyTorch-trained:pytorch-trained" "fine-tuned plain:finetuned-plain" "fine-tuned on hw:finetuned-hw"; do
    manifest_row "$manifest" "${pair%%:*}" hw "$seed" "s$seed/eval-${pair#*:}-hw.json"
  done
  echo "seed $seed done at $(( $(date +%s) - start )) s"
done
/usr/bin/python3 bench/seed_study_summary.py "$work" --compare "fine-tuned on hw|PyTorch-trained|hw" \
  --compare "fine-tuned on hw|fine-tuned plain|hw" --compare "fine-tuned plain|PyTorch-trained|hw" \
  --title "PyTorch CNN fine-tuned on the hardware ($(printf '%s ' "${options[@]}")), $seeds training seeds"
