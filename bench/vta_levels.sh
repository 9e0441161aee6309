#!/bin/bash
# VTA at its three levels on one double-buffered, convolution-like program: TILES input tiles of
# 64 INP entries, each multiplied by 16 weight tiles (1024 GEMM micro-ops, 262 144 int8 MACs per
# tile) into one of two ACC halves and stored; loads, GEMMs and stores overlap through the token
# queues. Prints each level's time (best of 3, one thread), the ratio to the functional level, the
# cycle level's cycles and stalls, the RTL level's (the cycle level with the GEMMs on the Verilated
# mac_array: its products and its cycles), and checks that every level wrote the same DRAM image.
#
# Usage: bench/vta_levels.sh [BUILD_DIR] [TILES]   (default build, 1000 tiles = 1.05 M micro-ops)
set -euo pipefail
build=${1:-build}
tiles=${2:-1000}
faultline=$build/apps/faultline
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work" "$tiles" <<'EOF'
import os, sys
import numpy as np
work, tiles = sys.argv[1], int(sys.argv[2])
entries, outs = 64, 16
rng = np.random.default_rng(1)
# DRAM (byte offsets): micro-ops at 0 (4-byte entries), weights at 65536 (256-byte entry 256),
# INP tiles at 1 MiB (16-byte entry 65536), outputs after them.
uop_at, wgt_at, inp_at = 0, 65536, 1 << 20
out_at = inp_at + tiles * entries * 16
image = np.zeros(out_at + tiles * outs * entries * 16, dtype=np.uint8)
uops = []
for b in range(2):  # log_uop: dst 11 bits, src 11 bits, wgt 10 bits (default configuration)
    for e in range(entries):
        uops.append((b * outs * entries + e) | ((b * entries + e) << 11) | (0 << 22))
image[uop_at:uop_at + 4 * len(uops)] = np.frombuffer(np.array(uops, dtype=np.uint32).tobytes(), dtype=np.uint8)
image[wgt_at:wgt_at + outs * 256] = rng.integers(0, 256, outs * 256, dtype=np.uint8)
image[inp_at:out_at] = rng.integers(0, 256, out_at - inp_at, dtype=np.uint8)
lines = [f"LOAD mem=UOP sram_base=0 dram_base={uop_at // 4} y_size=1 x_size={len(uops)} x_stride={len(uops)}",
         f"LOAD mem=WGT sram_base=0 dram_base={wgt_at // 256} y_size=1 x_size={outs} x_stride={outs}"]
for i in range(tiles):
    b = i % 2
    lines.append(f"LOAD mem=INP sram_base={b * entries} dram_base={inp_at // 16 + i * entries} y_size=1 x_size={entries} x_stride={entries}"
                 f" pop_next={int(i >= 2)} push_next=1")
    loop = f"uop_bgn={b * entries} uop_end={(b + 1) * entries} iter_out={outs} iter_in=1 dst_out={entries} wgt_out=1"
    lines.append(f"GEMM reset=1 {loop} pop_prev=1 pop_next={int(i >= 2)}")
    lines.append(f"GEMM {loop} push_prev=1 push_next=1")
    lines.append(f"STORE mem=OUT sram_base={b * outs * entries} dram_base={out_at // 16 + i * outs * entries} y_size=1 x_size={outs * entries}"
                 f" x_stride={outs * entries} pop_prev=1 push_prev=1")
lines.append("FINISH")
open(os.path.join(work, "prog.txt"), "w").write("\n".join(lines) + "\n")
for level in ("functional", "cycle", "rtl"):
    os.makedirs(os.path.join(work, level), exist_ok=True)
    image.tofile(os.path.join(work, level, "dram.bin"))
EOF

"$faultline" vta asm "$work/prog.txt" --out "$work/functional/insn.bin" > /dev/null
cp "$work/functional/insn.bin" "$work/cycle/insn.bin"
cp "$work/functional/insn.bin" "$work/rtl/insn.bin"

best() {  # best wall time of 3 runs, seconds
  local best_time=
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$work/last.txt"
    t1=$(date +%s.%N)
    best_time=$(echo "$t0 $t1 ${best_time:-1e9}" | awk '{t = $2 - $1; print (t < $3 ? t : $3)}')
  done
  echo "$best_time"
}
f=$(best "$faultline" vta run --program "$work/functional")
c=$(best "$faultline" vta run --program "$work/cycle" --level cycle --out "$work/cycle.json")
cycle_line=$(grep "cycle level:" "$work/last.txt")
r=$(best "$faultline" vta run --program "$work/rtl" --level rtl)
rtl_lines=$(grep -E "cycle level:|^rtl " "$work/last.txt" | sed 's/^/  rtl level: /')
for level in cycle rtl; do
  cmp -s "$work/functional/dram.out.bin" "$work/$level/dram.out.bin" || { echo "the $level level's DRAM image differs from the functional level's"; exit 1; }
done
uops=$(( tiles * 1024 ))
echo "VTA program: $tiles tiles, $uops GEMM micro-ops ($(( uops * 256 / 1000000 )) M int8 MACs); machine: $(nproc) cores, one thread used"
printf "functional %.3f s\ncycle      %.3f s (%.1fx functional)\nrtl        %.3f s (%.1fx functional)\n" "$f" "$c" "$(echo "$c $f" | awk '{print $1 / $2}')" \
  "$r" "$(echo "$r $f" | awk '{print $1 / $2}')"
echo "$cycle_line"
echo "$rtl_lines"
echo "every level wrote the same DRAM image"
