#!/usr/bin/env bash
# `faultline sweep` from the command line: a sweep killed with SIGKILL while it runs and started
# again gives the same files as one that ran through; with MPI, `mpirun -np 2` gives the same
# files as one process. Usage: sweep_cli_test.sh FAULTLINE WORKDIR [mpi]
set -euo pipefail
faultline=$1
work=$2
mpi=${3:-}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$faultline" train --arch mlp --epochs 1 --limit 3000 --seed 2 --out mlp.onnx > train.log
args=(sweep --model mlp.onnx --walking combined --sigma log:0.01:100:9 --trials 2 --limit 600 --seed 3 --tolerance 0.1)
"$faultline" "${args[@]}" --out full > full.log

# Kill the same sweep once it has logged a few rows, then start it again.
"$faultline" "${args[@]}" --out killed > killed1.log &
pid=$!
for _ in $(seq 1 1500); do
  [ -f killed.jsonl ] && [ "$(wc -l < killed.jsonl)" -ge 4 ] && break
  sleep 0.02
done
kill -KILL $pid 2> /dev/null || true
wait $pid 2> /dev/null || true
rows_before=$(($(wc -l < killed.jsonl) - 1))
"$faultline" "${args[@]}" --out killed > killed2.log
grep -Eq "^[1-9][0-9]* row\(s\) evaluated, [1-9][0-9]* taken from the log" killed2.log ||
  { cat killed2.log; echo "FAIL: the second start should both resume and evaluate"; exit 1; }
for ext in jsonl csv json midpoints.csv; do
  cmp full.$ext killed.$ext || { echo "FAIL: killed.$ext differs from the uninterrupted run (killed after $rows_before rows)"; exit 1; }
done
echo "resume after SIGKILL at $rows_before logged rows: identical files"

# A different sweep on the same log is refused with exit status 2 and one line.
set +e
"$faultline" "${args[@]}" --max-bisections 3 --out full > other.log 2>&1
status=$?
set -e
[ $status -eq 2 ] && [ "$(wc -l < other.log)" -eq 1 ] && grep -q "full.jsonl: written by a different sweep" other.log || { cat other.log; echo "FAIL: different sweep not refused"; exit 1; }

if [ "$mpi" = mpi ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  mpirun -np 2 "$faultline" "${args[@]}" --out mpi2 > mpi2.log
  grep -q "2 process(es)" mpi2.log || { cat mpi2.log; echo "FAIL: not 2 ranks"; exit 1; }
  for ext in jsonl csv json midpoints.csv; do
    cmp full.$ext mpi2.$ext || { echo "FAIL: mpi2.$ext differs from the single-process run"; exit 1; }
  done
  echo "mpirun -np 2: identical files"
fi
echo PASS
