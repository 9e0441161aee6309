#!/usr/bin/env bash
# The butterfly study's comparisons of trained networks (bench/butterfly_study.sh, issue 16)
# repeated over training seeds (issue 19): for each width, the dense, butterfly and Monarch MLPs
# (784-w-w-w-10, trained as the study trains them) with seeds 1..SEEDS, each evaluated ideal and on
# rram_crossbar (TRIALS Monte Carlo trials, evaluation seed 1 for all, so arms are paired). The
# summary (bench/seed_study_summary.py) gives per arm the 95 % CI over seeds and the paired
# differences butterfly − dense and Monarch − dense, ideal and on the crossbar — whether the
# factorized layers lose accuracy, and whether the crossbar costs them more than it costs dense.
# The IPU columns and plans stay in butterfly_study.sh (fp16 changed no network by more than 0.03
# points there). Resumable: existing networks and evaluations are kept.
# Usage: bench/butterfly_seed_study.sh [BUILD_DIR] [WORK] [EPOCHS] [TRAIN_IMAGES] [WIDTHS] [TRIALS] [SEEDS]
#   defaults: build, build/results/butterfly-seeds, 5, 20000, "256 1024", 3, 5
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-$build/results/butterfly-seeds}
epochs=${3:-5}
limit=${4:-20000}
widths=${5:-256 1024}
trials=${6:-3}
seeds=${7:-5}
f=$build/apps/faultline
mkdir -p "$work/nets" "$work/evals"
# shellcheck source=bench/seed_study_lib.sh
source bench/seed_study_lib.sh
manifest=$work/manifest.csv
manifest_start "$manifest"
start=$(date +%s)
for seed in $(seq 1 "$seeds"); do
  for width in $widths; do
    for arch in mlp butterfly_mlp monarch_mlp; do
      name=$arch-$width
      net=$work/nets/$name-s$seed.onnx
      once "$net" "$f" train --arch "$arch" --width "$width" --epochs "$epochs" --limit "$limit" --seed "$seed" --threads 2 > "$work/nets/$name-s$seed.log"
      arm=${arch%_mlp}
      [ "$arm" = mlp ] && arm=dense
      for condition in ideal rram_crossbar; do
        n=$trials
        [ "$condition" = ideal ] && n=1
        once "$work/evals/$name-$condition-s$seed.json" "$f" eval --model "$net" --hw "$condition" --trials "$n" --seed 1 --threads 2 > /dev/null
        manifest_row "$manifest" "$arm $width" "$condition" "$seed" "evals/$name-$condition-s$seed.json"
      done
    done
  done
  echo "seed $seed done at $(( $(date +%s) - start )) s"
done
compares=()
for width in $widths; do
  for condition in ideal rram_crossbar; do
    compares+=(--compare "butterfly $width|dense $width|$condition" --compare "monarch $width|dense $width|$condition")
  done
done
/usr/bin/python3 bench/seed_study_summary.py "$work" "${compares[@]}" \
  --title "Butterfly and Monarch MLPs against dense, $epochs epochs on $limit images, $seeds training seeds"
echo "study: $(( $(date +%s) - start )) s"
