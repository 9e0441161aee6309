#!/usr/bin/env bash
# Fuzzes every file reader for MINUTES minutes each (libFuzzer, ASan + UBSan), JOBS targets at a
# time, niced. Builds build-fuzz with clang if needed. Crashing inputs land in
# build-fuzz/fuzz-long/TARGET/ (crash-*, timeout-*, oom-*): fix the bug, then copy the input to
# tests/fuzz/corpus/TARGET/ so that the test command keeps checking it.
# Prints per target: executions, average executions/s, corpus size and any crash. The fuzzers
# run at nice 19: on a busy machine they get little CPU, which the rate shows.
# Usage: bench/fuzz.sh [MINUTES=30] [JOBS=2] [TARGETS...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(onnx npy idx hwcfg sweep_log trace vta); fi
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  sudo=""; if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi
if [ ! -f build-fuzz/CMakeCache.txt ]; then
  cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAULTLINE_FUZZ=ON > /dev/null
fi
cmake --build build-fuzz -j"$(nproc)" > /dev/null
run_one() {
  local t=$1 dir=build-fuzz/fuzz-long/$1
  mkdir -p "$dir/corpus"
  # Fork mode keeps fuzzing after a crash (each crashing input is kept) until the time is up.
  (cd "$dir" && nice -n 19 ../../tests/fuzz/fuzz_"$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
     -max_total_time=$((minutes * 60)) -timeout=10 -rss_limit_mb=2048 -max_len=65536 corpus ../../../tests/fuzz/corpus/"$t" > log.txt 2>&1) || true
  # Fork mode's status lines: "#EXECS: cov: ... exec/s R ... time: SECONDSs": the average rate is
  # executions over the seconds fuzzed (R is only the last job's).
  local last execs seconds rate
  last=$(grep -E '^#[0-9]+:' "$dir/log.txt" | tail -n 1)
  execs=$(echo "$last" | grep -oE '^#[0-9]+' | tr -d '#')
  seconds=$(echo "$last" | grep -oE '(^| )time: [0-9]+' | grep -oE '[0-9]+')
  rate=$(( ${seconds:-0} > 0 ? ${execs:-0} / seconds : 0 ))
  local crashes
  crashes=$(ls "$dir" | grep -E '^(crash|timeout|oom|leak)-' || true)
  printf '%-10s %4d min  %12s executions  %8s exec/s  corpus %5d  %s\n' "$t" "$minutes" "$execs" "$rate" "$(ls "$dir/corpus" | wc -l)" \
    "${crashes:-no crash}"
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then wait -n; running=$((running - 1)); fi
done
wait
