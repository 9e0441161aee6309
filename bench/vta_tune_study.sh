#!/bin/bash
# VTA auto-tuning study (issue 15): for the conv layers of ResNet-18 (bench/resnet18_vta_layers.txt)
# and for LeNet-5 (MODEL), the schedule spaces measured exhaustively on the cycle level (space
# size, invalid share by reason, the best schedule's speedup over the default one), then the
# random, xgb and validity strategies over SEEDS seeds each against those measurements: trials
# until the space's best and until within 1 % of it (mean, std, min, max), and whether the
# validity-driven initialization saves trials as Rieber et al. (arXiv 2205.15568) report (41.6 %
# of the measurements). Then the simulator as a measurement device: the Spearman rank correlation
# of cycles between the cycle level and the RTL level (GEMMs on the Verilated core) over a sample
# of LeNet-5 configurations.
#
# All measurements go to one log per hardware (OUT/measurements.log), so a rerun resumes and the
# strategies only look measurements up.
#
# Usage: bench/vta_tune_study.sh MODEL.onnx [BUILD_DIR] [OUT] [SEEDS] [RTL_SAMPLE]
#   defaults: build, build/results/vta-tune, 10 seeds, 8 configurations per LeNet conv layer
set -euo pipefail
model=$1
build=${2:-build}
out=${3:-build/results/vta-tune}
seeds=${4:-10}
sample=${5:-8}
faultline=$build/apps/faultline
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
log=$out/measurements.log
start=$(date +%s)

tune() {  # tune NAME ARGS...: one run into OUT/NAME
  local name=$1
  shift
  "$faultline" tune "$@" --log "$log" --out "$out/$name" > "$out/$name.txt"
}
tune resnet18-exhaustive --shapes "$here/resnet18_vta_layers.txt"
tune lenet5-exhaustive --model "$model"
echo "exhaustive: $(( $(date +%s) - start )) s"
for strategy in random xgb validity; do
  for seed in $(seq 1 "$seeds"); do
    tune "resnet18-$strategy-$seed" --shapes "$here/resnet18_vta_layers.txt" --strategy "$strategy" --seed "$seed"
    tune "lenet5-$strategy-$seed" --model "$model" --strategy "$strategy" --seed "$seed"
  done
done
echo "strategies: $(( $(date +%s) - start )) s"

# Cycle level against RTL level on a sample of valid LeNet-5 conv configurations (every k-th).
rtl=$out/rtl
mkdir -p "$rtl"
/usr/bin/python3 - "$out/lenet5-exhaustive/tune.json" "$sample" > "$rtl/sample.txt" <<'EOF'
import json, sys
layers = json.load(open(sys.argv[1]))["layers"]
n = int(sys.argv[2])
for l in layers:
    if not l["layer"].startswith("conv"):
        continue
    valid = [s for s, c in l["trials"] if not isinstance(c, str)]
    step = max(1, len(valid) // n)
    for s in valid[::step][:n]:
        print(l["layer"], s)
EOF
while read -r layer b h w ci co hn on; do
  name="$layer-${b}${h}${w}${ci}${co}${hn}${on}"
  if [ ! -f "$rtl/$name.rtl.json" ]; then
    sets=()
    for kv in "tile_b=${b#b}" "tile_h=${h#h}" "tile_w=${w#w}" "tile_ci=${ci#ci}" "tile_co=${co#co}" "h_nthread=${hn#hn}" "oc_nthread=${on#on}"; do
      sets+=(--set "units.vta.schedule.$layer.$kv")
    done
    "$faultline" vta compile --model "$model" --images 1 "${sets[@]}" --out "$rtl/$name" > /dev/null
    "$faultline" vta run --program "$rtl/$name/$layer" --level cycle --out "$rtl/$name.cycle.json" > /dev/null
    "$faultline" vta run --program "$rtl/$name/$layer" --level rtl --out "$rtl/$name.rtl.json" > /dev/null
  fi
  echo "$layer $b $h $w $ci $co $hn $on $rtl/$name"
done < "$rtl/sample.txt" > "$rtl/runs.txt"
echo "study done in $(( $(date +%s) - start )) s on $(nproc) threads"

/usr/bin/python3 "$here/vta_tune_summary.py" "$out" "$seeds" | tee "$out/summary.md"
