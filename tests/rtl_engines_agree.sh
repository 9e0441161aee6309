#!/usr/bin/env bash
# The two RTL engines (rtl/README.md): the Verilated C++ model stepped directly and the Verilated
# SystemC model give the same report -- results, mismatches, cycles -- for every shipped module
# under the default stimulus (every kind, every back-pressure pattern, random register values).
# Only the wall time and rate differ, so the last line's part after "cycles)" is dropped.
# Usage: rtl_engines_agree.sh FAULTLINE
set -euo pipefail
faultline=$1
for module in mac_array approx_mac_array; do
  direct=$("$faultline" cosim --rtl "$module" --seed 5 --engine direct | sed 's/, [0-9.]* s, [0-9]* vectors\/s$//')
  systemc=$("$faultline" cosim --rtl "$module" --seed 5 --engine systemc | sed 's/, [0-9.]* s, [0-9]* vectors\/s$//')
  if [ "$direct" != "$systemc" ]; then
    echo "FAIL $module: the engines differ"; echo "direct:"; echo "$direct"; echo "systemc:"; echo "$systemc"; exit 1
  fi
  echo "PASS $module: $(echo "$direct" | tail -1)"
done
