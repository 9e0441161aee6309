#!/usr/bin/env python3
"""`faultline vta asm|disasm|run` end to end: a program written as text is assembled, run on a
DRAM image and its output checked against numpy; disasm gives the text back; bad programs end
with one line naming the file and instruction, exit 2, within a second.
Usage: vta_cli_test.py FAULTLINE WORK_DIR [release|sanitized]
(sanitized: leaves out the errors raised after the SystemC level ran, which AddressSanitizer
misreports because SystemC's process stacks confuse its stack tracking; tests/CMakeLists.txt)"""
import os
import re
import subprocess
import sys
import time

import numpy as np

faultline, work = sys.argv[1:3]
sanitized = len(sys.argv) > 3 and sys.argv[3] == "sanitized"
os.makedirs(work, exist_ok=True)
failures = []


def run(*args):
    t0 = time.monotonic()
    p = subprocess.run([faultline, "vta", *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def expect(name, ok, detail):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


# DRAM: micro-op at byte 0 (element 0 of 4 bytes), ACC vector at byte 64 (element 1 of 64 bytes),
# output at byte 128 (element 8 of 16 bytes).
rng = np.random.default_rng(2)
acc = rng.integers(-3000, 3000, size=16, dtype=np.int32)
dram = bytearray(256)
dram[0:4] = np.uint32(0).tobytes()  # uop {dst 0, src 0, wgt 0}
dram[64:128] = acc.tobytes()
folder = os.path.join(work, "prog")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "dram.bin"), "wb") as f:
    f.write(bytes(dram))
text = """# requantize one ACC vector: (x >> 3) clipped to int8, then relu
LOAD mem=UOP sram_base=0 dram_base=0 y_size=1 x_size=1 x_stride=1
LOAD mem=ACC sram_base=0 dram_base=1 y_size=1 x_size=1 x_stride=1
ALU alu_op=SHR use_imm=1 imm=3 uop_bgn=0 uop_end=1 iter_out=1 iter_in=1
ALU alu_op=MIN use_imm=1 imm=127 uop_bgn=0 uop_end=1 iter_out=1 iter_in=1
ALU alu_op=MAX use_imm=1 imm=0 uop_bgn=0 uop_end=1 iter_out=1 iter_in=1 push_next=1
STORE mem=OUT sram_base=0 dram_base=8 y_size=1 x_size=1 x_stride=1 pop_prev=1
FINISH
"""
with open(os.path.join(work, "prog.txt"), "w") as f:
    f.write(text)
rc, out, err, _ = run("asm", os.path.join(work, "prog.txt"), "--out", os.path.join(folder, "insn.bin"))
expect("asm", rc == 0 and os.path.getsize(os.path.join(folder, "insn.bin")) == 7 * 16, f"exit {rc}: {out}{err}")
rc, out, err, _ = run("run", "--program", folder, "--out", os.path.join(work, "stats.json"))
got = np.frombuffer(open(os.path.join(folder, "dram.out.bin"), "rb").read()[128:144], dtype=np.int8)
want = np.maximum(np.minimum(acc >> 3, 127), 0).astype(np.int8)
expect("run gives numpy's result", rc == 0 and np.array_equal(got, want), f"exit {rc}: {out}{err}; got {got}, want {want}")
expect("run counters", "alu_counter 3" in out and "out_store_nbytes 16" in out and "acc_load_nbytes 64" in out, out)
stats = open(os.path.join(work, "stats.json")).read()
expect("stats JSON", '"alu_counter": 3' in stats and '"uop_load_nbytes": 4' in stats, stats)
# The cycle level: the same bytes, the fsim counters, cycles and stalls; a waveform on request.
functional_out = open(os.path.join(folder, "dram.out.bin"), "rb").read()
rc, out, err, _ = run("run", "--program", folder, "--level", "cycle", "--out", os.path.join(work, "cycle.json"), "--vcd", os.path.join(work, "vta.vcd"),
                      "--timing", "dram_latency=10")
cycle_stats = open(os.path.join(work, "cycle.json")).read() if rc == 0 else ""
expect("run --level cycle gives the functional level's bytes", rc == 0 and open(os.path.join(folder, "dram.out.bin"), "rb").read() == functional_out,
       f"exit {rc}: {out}{err}")
expect("cycle stats", '"alu_counter": 3' in cycle_stats and '"cycles": ' in cycle_stats and '"stall_c2s_cycles": ' in cycle_stats, cycle_stats)
expect("cycle waveform", rc == 0 and os.path.getsize(os.path.join(work, "vta.vcd")) > 0 and "compute_state" in open(os.path.join(work, "vta.vcd")).read(),
       f"exit {rc}: {out}{err}")
rc, out, err, _ = run("run", "--program", folder, "--level", "cycle", "--timing", "dram_latency=20")
slower = re.search(r"cycle level: (\d+) cycles", out)
faster = re.search(r'"cycles": (\d+)', cycle_stats)
expect("a longer DRAM latency costs cycles", rc == 0 and slower and faster and int(slower.group(1)) > int(faster.group(1)), f"exit {rc}: {out}{err}")

# Faults: the same seed gives the same bytes at the functional and cycle levels, and flips are counted.
outs = []
for level in ("functional", "cycle"):
    rc, out, err, _ = run("run", "--program", folder, "--level", level, "--faults", "acc=0.01,dram=0.001", "--seed", "5")
    outs.append(open(os.path.join(folder, "dram.out.bin"), "rb").read() if rc == 0 else None)
    expect(f"faults at the {level} level", rc == 0 and "flipped bits: inp 0, wgt 0, acc " in out, f"exit {rc}: {out}{err}")
expect("faults: same bytes at both levels", outs[0] is not None and outs[0] == outs[1] and outs[0] != functional_out, "differ")

rc, out, err, _ = run("disasm", os.path.join(folder, "insn.bin"))
lines = [l.split("#")[0].split() for l in out.splitlines()]
expect("disasm names every field", rc == 0 and len(lines) == 7 and lines[2][0] == "ALU" and "alu_op=SHR" in lines[2] and "imm=3" in lines[2]
       and "pop_prev=1" in lines[5], out)

# Bad programs: one line, exit 2, the file and the instruction named, quickly.
with open(os.path.join(work, "deadlock.txt"), "w") as f:
    f.write("LOAD mem=UOP x_size=1 y_size=1 x_stride=1\nGEMM uop_end=1 iter_out=1 iter_in=1 pop_next=1\nFINISH\n")
dead = os.path.join(work, "dead")
os.makedirs(dead, exist_ok=True)
with open(os.path.join(dead, "dram.bin"), "wb") as f:
    f.write(bytes(64))
run("asm", os.path.join(work, "deadlock.txt"), "--out", os.path.join(dead, "insn.bin"))
cases = [
    ("deadlock", ["run", "--program", dead], ["dead/insn.bin", "deadlock", "instruction 1 (GEMM)"]),
    ("missing folder", ["run", "--program", os.path.join(work, "nowhere")], ["nowhere/insn.bin", "no such file"]),
    ("asm unknown field", ["asm", os.path.join(work, "bad.txt"), "--out", os.path.join(work, "x.bin")], ["bad.txt:1", "colour"]),
    ("asm value too wide", ["asm", os.path.join(work, "wide.txt"), "--out", os.path.join(work, "x.bin")], ["wide.txt:1", "iter_out", "14 bits"]),
    ("bad config", ["run", "--program", folder, "--config", "log_acc_width=4"], ["--config", "log_acc_width"]),
    ("deadlock at the cycle level", ["run", "--program", dead, "--level", "cycle"], ["dead/insn.bin", "deadlock", "instruction 1 (GEMM)", "token from"]),
    ("timing unknown", ["run", "--program", folder, "--level", "cycle", "--timing", "colour=1"], ["--timing", "colour", "dram_latency"]),
    ("timing out of range", ["run", "--program", folder, "--level", "cycle", "--timing", "axi_max_burst=300"], ["--timing", "axi_max_burst", "256"]),
    ("timing not a number", ["run", "--program", folder, "--level", "cycle", "--timing", "dram_latency=soon"], ["--timing", "number"]),
    ("timing without the cycle level", ["run", "--program", folder, "--timing", "dram_latency=3"], ["--timing", "--level cycle"]),
    ("faults unknown buffer", ["run", "--program", folder, "--faults", "sram=0.1"], ["--faults", "sram", "inp, wgt"]),
    ("faults rate out of range", ["run", "--program", folder, "--faults", "wgt=2"], ["--faults", "wgt=2", "[0, 1]"]),
    ("axi width not a power of two", ["run", "--program", folder, "--level", "cycle", "--timing", "axi_data_bits=48"], ["axi_data_bits", "power of two"]),
]
with open(os.path.join(work, "bad.txt"), "w") as f:
    f.write("GEMM colour=1\n")
with open(os.path.join(work, "wide.txt"), "w") as f:
    f.write("GEMM iter_out=99999\n")
after_systemc = {"deadlock at the cycle level"}
for name, args, needles in cases:
    if sanitized and name in after_systemc:
        print(f"SKIP bad: {name} (sanitizer build)")
        continue
    rc, out, err, seconds = run(*args)
    line = err.strip()
    expect(f"bad: {name}", rc == 2 and "\n" not in line and all(n in line for n in needles) and seconds < 1.0,
           f"exit {rc} after {seconds:.2f} s: {err}")
# A network compiled to per-layer program folders: each folder runs alone, at the functional and
# the cycle level, to the DRAM image the network's own run left (expected.dram.out.bin).
model = os.path.join(work, "lenet5.onnx")
p = subprocess.run([faultline, "train", "--arch", "lenet5", "--epochs", "1", "--limit", "300", "--threads", "2", "--out", model],
                   capture_output=True, text=True, timeout=300)
expect("train a small LeNet-5", p.returncode == 0, p.stderr)
compiled = os.path.join(work, "compiled")
rc, out, err, _ = run("compile", "--model", model, "--out", compiled, "--images", "2")
expect("compile", rc == 0 and all(os.path.isfile(os.path.join(compiled, layer, "insn.bin")) for layer in ["conv1", "conv2", "fc1", "fc2", "fc3"]),
       f"exit {rc}: {out} {err}")
for layer in ["conv1", "fc1"]:
    for level in ["functional", "cycle"]:
        folder_l = os.path.join(compiled, layer)
        if os.path.exists(os.path.join(folder_l, "dram.out.bin")):
            os.remove(os.path.join(folder_l, "dram.out.bin"))
        rc, out, err, _ = run("run", "--program", folder_l, "--level", level)
        same = rc == 0 and open(os.path.join(folder_l, "dram.out.bin"), "rb").read() == open(os.path.join(folder_l, "expected.dram.out.bin"), "rb").read()
        expect(f"compiled {layer} at the {level} level", same, f"exit {rc}: {err}")
    info = open(os.path.join(compiled, layer, "layer.json")).read()
    # conv1 on the feature map of 2 images; fc1 as the 1 x 1 convolution of its 2 rows (one 1 x 2 image, BATCH 1).
    needle = '"images": 2' if layer == "conv1" else '"width": 2'
    expect(f"compiled {layer} describes itself", needle in info and '"shift"' in info, info)
rc, out, err, _ = run("compile", "--model", model, "--hw", "vta_sram_faults", "--out", os.path.join(work, "faulty"))
expect("bad: compile with bit error rates", rc == 2 and "bit error rates" in err and "\n" not in err.strip(), f"exit {rc}: {err}")
rc, out, err, _ = run("compile", "--model", model, "--hw", "int8_digital", "--out", os.path.join(work, "none"))
expect("bad: compile without a vta unit", rc == 2 and "no unit of kind vta" in err, f"exit {rc}: {err}")
p = subprocess.run([faultline, "eval", "--model", model, "--hw", "vta", "--limit", "40"], capture_output=True, text=True, timeout=120)
expect("eval --hw vta", p.returncode == 0 and "hardware vta: accuracy" in p.stdout, p.stderr)

print(f"{len(failures)} failing" if failures else "all passed")
sys.exit(1 if failures else 0)
