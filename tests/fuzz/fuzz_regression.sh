#!/usr/bin/env bash
# Runs one libFuzzer target over every input of its corpus, then RUNS mutations with seed 1
# (0 in the test suite: mutations depend on listing order and timing, see CMakeLists.txt).
# New inputs go to a scratch folder, never into the repository's corpus. Fails on any crash,
# sanitizer report, leak, timeout (10 s per input) or memory over 2 GiB.
# Usage: fuzz_regression.sh TARGET CORPUS_DIR WORK_DIR RUNS
set -euo pipefail
target=$1 corpus=$2 work=$3 runs=$4
rm -rf "$work" && mkdir -p "$work/new"
cd "$work"
"$target" -runs="$runs" -seed=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  "$work/new" "$corpus" 2>&1 | tail -n 25
echo "PASS: $(basename "$target") over $(ls "$corpus" | wc -l) corpus files and $runs mutations"
