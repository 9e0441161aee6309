#!/usr/bin/env python3
"""module.txt, the user RTL description (rtl/README.md): good descriptions validate, bad ones stop
configuring with one message naming module.txt (and its line where there is one) and what is wrong.
Runs cmake -P on tests/rtl_module_txt/validate_module.cmake, which uses cmake/FaultlineRtl.cmake.

Usage: module_txt_test.py CMAKE SOURCE_DIR VERILATOR_BIN VERILATOR_ROOT WORK_DIR"""
import os
import shutil
import subprocess
import sys

cmake, source_dir, verilator_bin, verilator_root, work = sys.argv[1:6]
example = os.path.join(source_dir, "tests", "user_rtl", "shift_mvu")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []

MISSING_PORT_SV = """module no_cfg (input logic clk, input logic rst_n, input logic in_valid, output logic in_ready,
  input logic in_weight, input logic [63:0] in_data, output logic out_valid, input logic out_ready,
  output logic [127:0] out_data, input logic cfg_valid, input logic [7:0] cfg_addr);
  assign in_ready = 1'b1; assign out_valid = 1'b0; assign out_data = '0;
endmodule
"""


def case(name, module_txt, needles, valid=False, extra_files=None):
    folder = os.path.join(work, "".join(c if c.isalnum() else "_" for c in name))
    os.makedirs(folder)
    for f in ("shift_mvu.sv", "twin.cpp"):
        shutil.copy(os.path.join(example, f), folder)
    for fname, text in (extra_files or {}).items():
        with open(os.path.join(folder, fname), "w") as f:
            f.write(text)
    with open(os.path.join(folder, "module.txt"), "wb") as f:
        f.write(module_txt.encode("utf-8"))
    p = subprocess.run([cmake, f"-DSOURCE_DIR={source_dir}", f"-DMODULE_DIR={folder}", f"-DVERILATOR_BIN={verilator_bin}",
                        f"-DVERILATOR_ROOT={verilator_root}", "-P", os.path.join(source_dir, "tests", "rtl_module_txt", "validate_module.cmake")],
                       capture_output=True, text=True, cwd=folder, timeout=120)
    text = " ".join((p.stdout + p.stderr).split())  # CMake wraps its messages at spaces
    ok = (p.returncode == 0) == valid and all(n.replace("MODULE_TXT", os.path.join(folder, "module.txt")) in text for n in needles)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": exit {p.returncode}\n{text}"))
    if not ok:
        failures.append(name)


good = open(os.path.join(example, "module.txt"), encoding="utf-8").read()
lines = good.splitlines(keepends=True)
case("the README example (em dash, trailing comments, a continued list)", good, ["valid: ", "registers: shift;round;saturate"], valid=True)
case("CRLF line ends", good.replace("\n", "\r\n"), ["valid: "], valid=True)
case("unknown key", lines[0] + "colour = red\n" + "".join(lines[1:]), ["MODULE_TXT:2: unknown key 'colour'"])
case("not key = value", "top shift_mvu\n", ["MODULE_TXT:1: expected 'key = value'"])
case("twin missing", "".join(l for l in lines if not l.startswith("twin")), ["MODULE_TXT: twin: required"])
case("twin file missing", good.replace("twin = twin.cpp", "twin = other.cpp"), ["MODULE_TXT:4: twin:", "other.cpp' is not a file"])
case("twin unknown", good.replace("twin = twin.cpp", "twin = exactly"), ["MODULE_TXT:4: twin: must be exact, approx, none or a C++ file"])
case("approx twin without drop_bits", good.replace("twin = twin.cpp", "twin = approx"), ["MODULE_TXT:4: twin:", "drop_bits"])
case("lanes do not match in_data", good.replace("inputs = 8 ", "inputs = 4 "),
     ["MODULE_TXT: port 'in_data' of 'shift_mvu' is 64 bits wide, the contract needs 32 (8 bits x inputs = 4)"])
case("lanes do not match out_data", good.replace("outputs = 4 ", "outputs = 2 "),
     ["port 'out_data' of 'shift_mvu' is 128 bits wide, the contract needs 64 (32 bits x outputs = 2)"])
case("outputs out of range", good.replace("outputs = 4 ", "outputs = 300 "), ["MODULE_TXT:5: outputs: must be in [1, 256]"])
case("reset value too wide", good.replace("shift:0:0:4", "shift:0:16:4"), ["MODULE_TXT:7: config: register 'shift': reset value 16 does not fit 4 bits [0, 15]"])
case("register entry malformed", good.replace("shift:0:0:4", "shift=0"), ["MODULE_TXT:7: config: entry 'shift=0' must be name:address:reset"])
case("two registers at one address", good.replace("saturate:2:0:1", "saturate:1:0:1"), ["register 'saturate': address 1 is taken"])
case("key given twice", good + "top = other\n", ["MODULE_TXT:12: top: given twice"])
case("max_cycles_per_vector not a number", good.replace("max_cycles_per_vector = 8", "max_cycles_per_vector = lots"),
     ["MODULE_TXT:9: max_cycles_per_vector: must be a whole number"])
case("macs_per_cycle above the array", good.replace("macs_per_cycle = 16", "macs_per_cycle = 64"), ["MODULE_TXT:10: macs_per_cycle: must be a whole number in [1, outputs x inputs = 32]"])
case("source missing", good.replace("sources = shift_mvu.sv", "sources = shift_mvu.sv gone.sv"), ["MODULE_TXT:3: sources:", "gone.sv' is not a file"])
case("a port missing", good.replace("top = shift_mvu", "top = no_cfg").replace("sources = shift_mvu.sv", "sources = no_cfg.sv"),
     ["MODULE_TXT: top module 'no_cfg' has no port 'cfg_data'"], extra_files={"no_cfg.sv": MISSING_PORT_SV})
case("parameters malformed", good + "parameters = BUG\n", ["MODULE_TXT:12: parameters: entry 'BUG' must be NAME=integer"])
print(f"{len(failures)} failing" if failures else "all passed")
sys.exit(1 if failures else 0)
