#!/usr/bin/env bash
# Golden bits: a short fixed training run and an evaluation on the RRAM crossbar give files whose
# SHA-256 is checked in (tests/golden_bits.sha256). Results are a function of the inputs and the
# seed alone on any x86-64 machine (fixed Eigen blocking, no libm dispatch, no FMA contraction)
# and any thread count, so these hashes hold everywhere. A change that is meant to change results
# (the trainer, a model) updates the file: run this script with --update and say why in the commit.
# Usage: golden_bits_test.sh FAULTLINE SOURCE_DIR WORK_DIR [--update]
set -euo pipefail
faultline=$1 source_dir=$2 work=$3 mode=${4:-check}
golden=$source_dir/tests/golden_bits.sha256
rm -rf "$work" && mkdir -p "$work" && cd "$work"
# Relative names: the eval JSON records the model's path.
"$faultline" train --arch lenet5 --epochs 1 --limit 2000 --batch-size 64 --lr 2e-3 --seed 1 --threads 2 --out lenet5.onnx > /dev/null
"$faultline" train --arch lenet5 --epochs 1 --limit 2000 --batch-size 64 --lr 2e-3 --seed 1 --threads 1 --out lenet5-1thread.onnx > /dev/null
cmp lenet5.onnx lenet5-1thread.onnx || { echo "FAIL: training differs between 1 and 2 threads"; exit 1; }
"$faultline" eval --model lenet5.onnx --hw rram_crossbar --trials 2 --seed 3 --limit 1000 --threads 2 --out eval-rram_crossbar.json > /dev/null
sha256sum lenet5.onnx eval-rram_crossbar.json > actual.sha256
if [ "$mode" = --update ]; then
  cp actual.sha256 "$golden"
  echo "updated $golden"
  cat "$golden"
  exit 0
fi
if diff "$golden" actual.sha256; then
  echo "PASS"
else
  echo "FAIL: results differ from the golden bits (above: < checked in, > this run); if intended, rerun with --update"
  exit 1
fi
