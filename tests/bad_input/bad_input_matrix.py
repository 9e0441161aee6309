#!/usr/bin/python3
"""Bad-input matrix (issue 12): every file kind and command given hostile input must end with
exit status 2 and exactly one line on stderr that names the file (and field, node or line) and
what is wrong. Table-driven: each case is (name, command line, words the message must contain).
Files are made here from one small valid file of each kind, then truncated at several offsets,
given a wrong magic/type/dtype, absurd sizes, duplicates, emptied, replaced by a folder, or
written to an unwritable or full (/dev/full) output.

Usage: bad_input_matrix.py FAULTLINE_BINARY SOURCE_DIR WORK_DIR
Prints one line per failing case and "PASS: N cases" at the end."""
import gzip
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

faultline, source_dir, work = (os.path.abspath(a) for a in sys.argv[1:4])
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
W = lambda *p: os.path.join(work, *p)  # noqa: E731
cases = []  # (name, argv, needles)


def case(name, args, *needles):
    cases.append((name, args, needles))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cuts(data):
    """Offsets to truncate at: inside the header, at a quarter, half and near the end."""
    n = len(data)
    return sorted({1, 7, 11, n // 4, n // 2, n - 1})


# --- valid fixtures -------------------------------------------------------------------------
rng = np.random.default_rng(1)


def mlp(name, inits_twice=False, opset=True, input_shape=(None, 1, 28, 28), gemm_in=784):
    w = numpy_helper.from_array((0.01 * rng.standard_normal((10, gemm_in))).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(10, np.float32), "b")
    inits = [w, b] + ([numpy_helper.from_array(np.ones(10, np.float32), "b")] if inits_twice else [])
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], name="flatten"),
                           helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1, name="fc")],
                          "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)] if opset else [])
    m.ir_version = 8
    if not opset:
        del m.opset_import[:]
    return write(W(name), m.SerializeToString())


model = mlp("model.onnx")
good_model = read(model)


def idx(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx([4, 28, 28], rng.integers(0, 256, 4 * 784).tolist())
labels = idx([4], [0, 3, 9, 1])


def dataset(name, imgs=images, labs=labels, gz=False):
    d = W(name)
    os.makedirs(d, exist_ok=True)
    suffix = ".gz" if gz else ""
    write(os.path.join(d, "t10k-images-idx3-ubyte" + suffix), gzip.compress(imgs) if gz else imgs)
    write(os.path.join(d, "t10k-labels-idx1-ubyte" + suffix), gzip.compress(labs) if gz else labs)
    return d


data = dataset("data")
hw_text = read(os.path.join(source_dir, "hwcfg", "rram_crossbar.yaml"))
hw = write(W("hw.yaml"), hw_text)
x = W("x.npy")
np.save(x, rng.random((1, 1, 28, 28), dtype=np.float32))
good_npy = read(x)


def EV(*extra, model=model, data=data, threads="1"):
    return ["eval", "--model", model, "--data", data, "--threads", threads, *extra]


def INF(*extra, model=model, inp=x):
    return ["infer", "--model", model, "--output", W("y.npy"), *(["--input", inp] if inp else []), *extra]


os.makedirs(W("folder"))

# --- ONNX models ------------------------------------------------------------------------------
for cut in cuts(good_model):
    case(f"onnx truncated at {cut}", EV(model=write(W(f"cut{cut}.onnx"), good_model[:cut])), f"cut{cut}.onnx")
case("onnx empty", EV(model=write(W("empty.onnx"), b"")), "empty.onnx", "not an ONNX model")
case("onnx garbage", EV(model=write(W("garbage.onnx"), b"\xff\xfe not protobuf \x01")), "garbage.onnx", "not an ONNX model")
case("onnx is an NPY", EV(model=x), "x.npy")
case("onnx duplicate initializer", EV(model=mlp("dup.onnx", inits_twice=True)), "dup.onnx", "'b'", "twice")
case("onnx without opset", EV(model=mlp("noopset.onnx", opset=False)), "noopset.onnx", "opset")
case("onnx folder", EV(model=W("folder")), "folder", "is a folder")
case("onnx missing", EV(model=W("absent.onnx")), "absent.onnx", "no such file")
case("onnx wrong input shape for the data", EV(model=mlp("small.onnx", input_shape=(1, 1, 14, 14), gemm_in=196)), "small.onnx", "input 'x'")
case("onnx gemm shape error at run time", EV(model=mlp("gemmbad.onnx", input_shape=(None, 1, 28, 28), gemm_in=100)), "gemmbad.onnx", "node 'fc'")
m = onnx.load_from_string(good_model)
m.graph.node[1].input[1] = "nowhere"
case("onnx reads an undefined value", EV(model=write(W("undef.onnx"), m.SerializeToString())), "undef.onnx", "nowhere")
m = onnx.load_from_string(good_model)
m.graph.node[1].op_type = "Einsum"
case("onnx unsupported operator", EV(model=write(W("einsum.onnx"), m.SerializeToString())), "einsum.onnx", "Einsum")
m = onnx.load_from_string(good_model)
m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:100]
case("onnx initializer data too short", EV(model=write(W("short_init.onnx"), m.SerializeToString())), "short_init.onnx", "'w'")
m = onnx.load_from_string(good_model)
m.graph.initializer[0].data_type = TensorProto.COMPLEX64
case("onnx initializer dtype", EV(model=write(W("complex.onnx"), m.SerializeToString())), "complex.onnx", "data type")
m = onnx.load_from_string(good_model)
m.graph.initializer[0].dims[:] = [10, 784, 1 << 40]
case("onnx absurd initializer dims", EV(model=write(W("huge.onnx"), m.SerializeToString())), "huge.onnx", "'w'")
m = onnx.load_from_string(good_model)
m.graph.node.append(helper.make_node("Relu", ["y"], ["y"], name="again"))
case("onnx value produced twice", EV(model=write(W("twice.onnx"), m.SerializeToString())), "twice.onnx", "'y'")
pool = helper.make_model(helper.make_graph(
    [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], pads=[2, 2, 2, 2], name="pool"),
     helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1, name="fc")],
    "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 28, 28])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])],
    [numpy_helper.from_array(np.zeros((10, 1024), np.float32), "w"), numpy_helper.from_array(np.zeros(10, np.float32), "b")]),
    opset_imports=[helper.make_opsetid("", 13)])
pool.ir_version = 8
case("onnx pooling pads larger than the window", EV(model=write(W("pool.onnx"), pool.SerializeToString())), "pool.onnx", "node 'pool'", "pads")
for cut in cuts(good_model)[:3]:
    case(f"infer model truncated at {cut}", INF(model=W(f"cut{cut}.onnx")), f"cut{cut}.onnx")

# --- NPY inputs (infer) -----------------------------------------------------------------------
for cut in cuts(good_npy):
    case(f"npy truncated at {cut}", INF(inp=write(W(f"cut{cut}.npy"), good_npy[:cut])), f"cut{cut}.npy")
case("npy bad magic", INF(inp=write(W("magic.npy"), b"\x93NUMPX" + good_npy[6:])), "magic.npy", "magic")
case("npy version 9", INF(inp=write(W("v9.npy"), good_npy[:6] + b"\x09" + good_npy[7:])), "v9.npy", "version")


def npy_with_header(name, header, payload=b""):
    h = header.encode()
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    return write(W(name), b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + payload)


case("npy unsupported dtype", INF(inp=npy_with_header("u2.npy", "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1, 28, 28), }", bytes(2 * 784))), "u2.npy", "dtype")
case("npy fortran order", INF(inp=npy_with_header("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1, 28, 28), }", bytes(4 * 784))), "fortran.npy", "Fortran")
case("npy absurd shape", INF(inp=npy_with_header("absurd.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 9999999), }")), "absurd.npy")
case("npy malformed shape", INF(inp=npy_with_header("shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1x, 2), }")), "shape.npy", "shape")
case("npy header without shape", INF(inp=npy_with_header("noshape.npy", "{'descr': '<f4', 'fortran_order': False, }")), "noshape.npy", "shape")
np.save(W("i32.npy"), np.zeros((1, 1, 28, 28), np.int32))
case("npy int32 for a float input", INF(inp=W("i32.npy")), "i32.npy", "int32", "float32")
np.save(W("wrongshape.npy"), np.zeros((1, 1, 14, 14), np.float32))
case("npy wrong shape", INF(inp=W("wrongshape.npy")), "wrongshape.npy", "[1, 1, 14, 14]")
case("npy empty", INF(inp=write(W("empty.npy"), b"")), "empty.npy")
case("npy folder", INF(inp=W("folder.npy")), "folder.npy", "is a folder")
case("npy missing", INF(inp=W("absent.npy")), "absent.npy", "no such file")
case("infer unknown input extension", INF(inp=hw), "hw.yaml", "format")
case("infer two inputs for one", INF("--input", x), "model.onnx", "input")
case("infer output not .npy", ["infer", "--model", model, "--input", x, "--output", W("y.txt")], "y.txt", ".npy")
case("infer output folder missing", ["infer", "--model", model, "--input", x, "--output", W("nodir", "y.npy")], "nodir")
os.makedirs(W("folder.npy"))
case("infer output is a folder", ["infer", "--model", model, "--input", x, "--output", W("folder.npy")], "folder.npy", "folder")
os.symlink("/dev/full", W("full.npy"))
case("infer output on a full disk", ["infer", "--model", model, "--input", x, "--output", W("full.npy")], "full.npy", "No space left")
os.symlink("/dev/full", W("full.json"))
case("eval out on a full disk (symlink)", EV("--out", W("full.json")), "full.json", "No space left")

# --- IDX datasets (eval --data) ---------------------------------------------------------------
for cut in [1, 3, 9, 16, len(images) // 2, len(images) - 1]:
    case(f"idx images truncated at {cut}", EV(data=dataset(f"img_cut{cut}", imgs=images[:cut])), f"img_cut{cut}", "images")
for cut in [2, 6, len(labels) - 1]:
    case(f"idx labels truncated at {cut}", EV(data=dataset(f"lab_cut{cut}", labs=labels[:cut])), f"lab_cut{cut}", "labels")
case("idx images and labels swapped", EV(data=dataset("swapped", imgs=labels, labs=images)), "swapped", "magic number")
case("idx wrong element type", EV(data=dataset("type", imgs=images[:2] + b"\x0d" + images[3:])), "type", "magic number")
case("idx absurd dimensions", EV(data=dataset("absurd", imgs=idx([0xffffffff, 0xffffffff, 28], []))), "absurd", "implausibly large")
case("idx extra bytes", EV(data=dataset("extra", imgs=images + b"\x00\x00")), "extra", "past the declared data")
case("idx zero images", EV(data=dataset("zero", imgs=idx([0, 28, 28], []), labs=idx([0], []))), "zero", "no images")
case("idx label count differs", EV(data=dataset("count", labs=idx([3], [1, 2, 3]))), "count", "labels for")
case("idx label out of range", EV(data=dataset("label", labs=idx([4], [0, 1, 2, 200]))), "label", "200")
dataset("gzcut", gz=True)
write(W("gzcut", "t10k-images-idx3-ubyte.gz"), gzip.compress(images)[:300])
case("idx gzip truncated", EV(data=W("gzcut")), "gzcut", "gzip")
dataset("gzbad", gz=True)
write(W("gzbad", "t10k-images-idx3-ubyte.gz"), b"\x1f\x8b" + bytes(40))
case("idx gzip corrupt", EV(data=W("gzbad")), "gzbad", "gzip")
case("idx wrong image size for the model", EV(data=dataset("small", imgs=idx([4, 14, 14], bytes(4 * 196)))), "model.onnx", "input 'x'")

# --- NumPy folders, CIFAR-10 batches and preprocessing flags (eval --data, --layout, --scale, --normalize) ---


def npy_folder(name, imgs, labs, labels_file=True):
    os.makedirs(W(name), exist_ok=True)
    np.save(W(name, "images.npy"), imgs)
    if labels_file:
        np.save(W(name, "labels.npy"), labs)
    return W(name)


good_imgs = rng.integers(0, 256, (4, 1, 28, 28)).astype(np.uint8)
good_labs = np.array([0, 3, 9, 1], np.int64)
npy_ok = npy_folder("npy_ok", good_imgs, good_labs)
case("npy labels missing", EV(data=npy_folder("npy_nolab", good_imgs, None, labels_file=False)), "npy_nolab", "labels.npy")
case("npy labels are floats", EV(data=npy_folder("npy_flab", good_imgs, good_labs.astype(np.float32))), "labels.npy", "integers")
case("npy label count differs", EV(data=npy_folder("npy_count", good_imgs, good_labs[:3])), "labels.npy", "3 labels for 4 images")
case("npy negative label", EV(data=npy_folder("npy_neg", good_imgs, np.array([0, -1, 2, 3]))), "labels.npy", "-1")
case("npy images of rank 2", EV(data=npy_folder("npy_rank", good_imgs.reshape(4, 784), good_labs)), "images.npy", "rank 2")
case("npy images of int64", EV(data=npy_folder("npy_int", good_imgs.astype(np.int64), good_labs)), "images.npy", "dtype int64")
case("npy images not finite", EV(data=npy_folder("npy_nan", np.full((4, 1, 28, 28), np.nan, np.float32), good_labs)), "images.npy", "not finite")
case("npy images truncated", EV(data=write(os.path.join(npy_folder("npy_cut", good_imgs, good_labs), "images.npy"), read(W("npy_ok", "images.npy"))[:-5]) and W("npy_cut")),
     "images.npy", "truncated")
case("npy nhwc shape wrong for the model", EV("--layout", "nhwc", data=npy_ok), "model.onnx", "input 'x'")
case("layout unknown", EV("--layout", "chw", data=npy_ok), "--layout", "nchw or nhwc")
case("layout nhwc on IDX files", EV("--layout", "nhwc"), "--layout", "images.npy only")
case("scale not a number", EV("--scale", "1/x"), "--scale", "not a number")
case("scale zero", EV("--scale", "0"), "--scale", "positive")
case("scale divides by zero", EV("--scale", "1/0"), "--scale", "positive")
case("normalize without a colon", EV("--normalize", "0.5"), "--normalize", "MEAN")
case("normalize std zero", EV("--normalize", "0.5:0"), "--normalize", "positive")
case("normalize counts differ", EV("--normalize", "0.5,0.5:1"), "--normalize", "2 means but 1")
case("normalize channels differ", EV("--normalize", "0.5,0.5,0.5:1,1,1"), "t10k-images", "3 values for images of 1 channel")
os.makedirs(W("cifar_short"), exist_ok=True)
write(W("cifar_short", "test_batch.bin"), bytes(3073 * 2 - 10))
case("cifar batch not whole records", EV(data=W("cifar_short")), "test_batch.bin", "3073")
os.makedirs(W("cifar_label"), exist_ok=True)
write(W("cifar_label", "test_batch.bin"), bytes([3]) + bytes(3072) + bytes([12]) + bytes(3072))
case("cifar label out of range", EV(data=W("cifar_label")), "test_batch.bin", "record 1", "label 12")
os.makedirs(W("cifar_train"), exist_ok=True)
write(W("cifar_train", "test_batch.bin"), bytes(3073))
case("cifar training batches missing", ["train", "--data", W("cifar_train"), "--epochs", "1", "--out", W("cifar_train.onnx")], "data_batch_1.bin")
case("cifar images wrong for the model", EV(data=W("cifar_train")), "model.onnx", "input 'x'")
case("dataset folder missing", EV(data=W("nodata")), "nodata")
os.makedirs(W("imgdir", "t10k-images-idx3-ubyte"))
write(W("imgdir", "t10k-labels-idx1-ubyte"), labels)
case("idx images file is a folder", EV(data=W("imgdir")), "t10k-images-idx3-ubyte", "is a folder")
os.makedirs(W("nolabels"))
write(W("nolabels", "t10k-images-idx3-ubyte"), images)
case("idx labels missing", EV(data=W("nolabels")), "nolabels", "labels")

# --- hardware descriptions (eval --hw) --------------------------------------------------------
for cut in [5, 40, len(hw_text) // 3, hw_text.index(b"kind:") + 3, hw_text.index(b"unit: xbar") + 8]:
    t = hw_text[:cut]
    case(f"hwcfg truncated at {cut}", EV("--hw", write(W(f"hwcut{cut}.yaml"), t)), f"hwcut{cut}.yaml")


def hwfile(name, text):
    return write(W(name), text.encode() if isinstance(text, str) else text)


XBAR = "name: t\nunits:\n  xbar:\n    kind: analog_crossbar\n{extra}mapping:\n  - layers: \"{layers}\"\n    unit: xbar\n"
case("hwcfg repeated key", EV("--hw", hwfile("rep.yaml", XBAR.format(extra="    adc_bits: 6\n    adc_bits: 8\n", layers="*"))), "rep.yaml", "adc_bits", "repeated")
case("hwcfg second document", EV("--hw", hwfile("docs.yaml", XBAR.format(extra="", layers="*") + "---\nname: other\n")), "docs.yaml", "second YAML document")
case("hwcfg stray comma", EV("--hw", hwfile("comma.yaml", "name: t\n, units: {}\n")), "comma.yaml", "','")
case("hwcfg flow then comma", EV("--hw", hwfile("flow.yaml", "{name: t}, {}\n")), "flow.yaml", "','")
case("hwcfg unknown field", EV("--hw", hwfile("unknown.yaml", XBAR.format(extra="    adc_bitz: 6\n", layers="*"))), "unknown.yaml", "adc_bitz")
case("hwcfg unknown kind", EV("--hw", hwfile("kind.yaml", XBAR.format(extra="", layers="*").replace("analog_crossbar", "quantum"))), "kind.yaml", "quantum")
case("hwcfg out of range", EV("--hw", hwfile("range.yaml", XBAR.format(extra="    adc_bits: 99\n", layers="*"))), "range.yaml", "adc_bits")
case("hwcfg wrong type", EV("--hw", hwfile("type.yaml", XBAR.format(extra="    adc_bits: [1, 2]\n", layers="*"))), "type.yaml", "adc_bits")
case("hwcfg levels 1", EV("--hw", hwfile("levels.yaml", XBAR.format(extra="    levels: 1\n", layers="*"))), "levels.yaml", "levels")
case("hwcfg g_max below g_min", EV("--hw", hwfile("gmax.yaml", XBAR.format(extra="    g_min: 50\n    g_max: 10\n", layers="*"))), "gmax.yaml", "g_max")
case("hwcfg mapping matches no layer", EV("--hw", hwfile("nomatch.yaml", XBAR.format(extra="", layers="conv*"))), "nomatch.yaml", "mapping[0]", "conv*")
case("hwcfg mapping names no unit", EV("--hw", hwfile("nounit.yaml", XBAR.format(extra="", layers="*").replace("unit: xbar", "unit: xbaz"))), "nounit.yaml", "xbaz")
case("hwcfg noise site matches nothing", EV("--hw", hwfile("nosite.yaml", "name: n\nunits: {}\nnoise:\n  - after: \"nothing*\"\n    additive: 0.1\n")), "nosite.yaml", "noise[0]")
case("hwcfg negative noise", EV("--hw", hwfile("negnoise.yaml", "name: n\nunits: {}\nnoise:\n  - after: \"fc\"\n    additive: -1\n")), "negnoise.yaml", "additive")
TN = "name: t\nunits:\n  n:\n    kind: trace_noise\n    shape: quantiles\n    q001: 3\nmapping:\n  - layers: \"*\"\n    unit: n\n"
case("hwcfg reversed quantile table", EV("--hw", hwfile("quant.yaml", TN)), "quant.yaml", "out of order")
case("hwcfg binary garbage", EV("--hw", hwfile("bin.yaml", b"\x00\x01\x02\xff\xfe")), "bin.yaml")
case("hwcfg empty", EV("--hw", hwfile("empty.yaml", "")), "empty.yaml")
case("hwcfg a list", EV("--hw", hwfile("list.yaml", "- a\n- b\n")), "list.yaml", "mapping")
case("hwcfg deep nesting", EV("--hw", hwfile("deep.yaml", "name: t\nunits: " + "[" * 200 + "]" * 200 + "\n")), "deep.yaml")
case("hwcfg bare carriage returns", EV("--hw", hwfile("cr.yaml", "name: t\runits: {}\r")), "cr.yaml", "carriage return")
case("hwcfg tab indentation", EV("--hw", hwfile("tab.yaml", "name: t\nunits:\n\txbar: 1\n")), "tab.yaml")
case("hwcfg missing name", EV("--hw", hwfile("noname.yaml", "units: {}\n")), "noname.yaml", "name")
case("hwcfg folder", EV("--hw", W("folder")), "folder", "is a folder")
case("hwcfg missing file", EV("--hw", W("absent.yaml")), "absent.yaml")
case("hwcfg unknown preset", EV("--hw", "nosuchpreset"), "nosuchpreset")
case("set unknown field", EV("--hw", hw, "--set", "units.xbar.adc_bitz=3"), "adc_bitz")
case("set out of range", EV("--hw", hw, "--set", "units.xbar.adc_bits=99999999999"), "adc_bits")
case("set negative", EV("--hw", hw, "--set", "units.xbar.adc_bits=-1"), "adc_bits")
case("set without value", EV("--hw", hw, "--set", "units.xbar.adc_bits"), "--set")
case("set unknown unit", EV("--hw", hw, "--set", "units.nope.adc_bits=3"), "nope")

# --- command-line options ---------------------------------------------------------------------
for command, extra in [("eval", EV()[1:]), ("sweep", ["--model", model, "--data", data, "--sweep", "units.xbar.adc_bits=6,8", "--hw", hw]),
                       ("trace", ["--model", model, "--data", data, "--hw", hw, "--out", W("tr_opt")]), ("infer", INF()[1:])]:
    case(f"{command} seed -1", [command] + extra + ["--seed", "-1"], "--seed")
    case(f"{command} seed not a number", [command] + extra + ["--seed", "abc"], "--seed")
    case(f"{command} unknown option", [command] + extra + ["--frobnicate", "1"], "frobnicate")
case("train seed -1", ["train", "--out", W("t.onnx"), "--seed", "-1"], "--seed")
case("train hw-seed -1", ["train", "--out", W("t.onnx"), "--hw-seed", "-1"], "--hw-seed")
case("threads 0", EV(threads="0"), "--threads")
case("threads huge", EV(threads="100000"), "--threads")
case("threads not a number", EV(threads="two"), "--threads")
case("trials 0", EV("--trials", "0"), "--trials")
case("limit negative", EV("--limit", "-1"), "--limit")
case("level bogus", EV("--level", "gate"), "--level", "gate")
case("vcd with functional level", EV("--vcd", W("w.vcd")), "--vcd")
case("missing required model", ["eval"], "model")
case("unknown command", ["frobnicate"], "frobnicate")
case("sweep malformed axis", ["sweep", "--model", model, "--data", data, "--sweep", "units.xbar.adc_bits"], "--sweep")
case("sweep log range with zero", ["sweep", "--model", model, "--data", data, "--walking", "additive", "--sigma", "log:0:1:3"], "--sigma")
case("sweep unknown walking mode", ["sweep", "--model", model, "--data", data, "--walking", "sideways"], "--walking")
case("train unknown arch", ["train", "--arch", "resnet9000", "--out", W("t.onnx")], "--arch")
case("train zero epochs", ["train", "--epochs", "0", "--out", W("t.onnx")], "--epochs")
case("train bad learning rate", ["train", "--lr", "-1", "--out", W("t.onnx")], "--lr")


# RTL co-simulation and RTL units (issue 13)
INT8_RTL = "name: r\nunits:\n  mvu:\n    kind: int8_digital\n{extra}mapping:\n  - layers: \"*\"\n    unit: mvu\n"
case("cosim stimulus bogus", ["cosim", "--rtl", "mac_array", "--stimulus", "noise"], "--stimulus", "noise")
case("cosim stimulus npy missing", ["cosim", "--rtl", "mac_array", "--stimulus", W("absent.npy")], "absent.npy", "no such file")
case("cosim stimulus npy not vectors", ["cosim", "--rtl", "mac_array", "--stimulus", x], "x.npy", "[vectors, inputs]")
case("cosim backpressure pattern bogus", ["cosim", "--rtl", "mac_array", "--backpressure-pattern", "sometimes"], "--backpressure-pattern", "sometimes")
case("cosim engine bogus", ["cosim", "--rtl", "mac_array", "--engine", "verilog"], "--engine", "verilog")
case("cosim density above 1", ["cosim", "--rtl", "mac_array", "--density", "2"], "--density")
case("cosim register out of range", ["cosim", "--rtl", "approx_mac_array", "--set", "drop_bits=16"], "drop_bits", "[0, 15]")
case("cosim register negative", ["cosim", "--rtl", "approx_mac_array", "--set", "drop_bits=-1"], "drop_bits", "[0, 15]")
case("cosim register unknown", ["cosim", "--rtl", "mac_array", "--set", "shift=1"], "shift", "no register")
case("cosim waveform with the direct engine", ["cosim", "--rtl", "mac_array", "--engine", "direct", "--vcd", W("d.vcd")], "--engine direct", "waveform")
case("eval check without rtl level", EV("--check"), "--check", "--level rtl")
case("eval rtl engine bogus", EV("--level", "rtl", "--hw", "int8_mac_array", "--rtl-engine", "fpga"), "--rtl-engine", "fpga")
case("hwcfg registers without impl", EV("--hw", hwfile("regs_noimpl.yaml", INT8_RTL.format(extra="    registers: {drop_bits: 2}\n"))), "regs_noimpl.yaml", "registers", "impl")
case("hwcfg registers not a mapping", EV("--hw", hwfile("regs_list.yaml", INT8_RTL.format(extra="    impl: rtl:approx_mac_array\n    registers: [1, 2]\n"))), "regs_list.yaml", "registers", "mapping")
case("hwcfg register value text", EV("--hw", hwfile("regs_text.yaml", INT8_RTL.format(extra="    impl: rtl:approx_mac_array\n    registers: {drop_bits: lots}\n"))), "regs_text.yaml", "drop_bits", "whole number")
case("hwcfg register too wide at the rtl level", EV("--level", "rtl", "--hw", hwfile("regs_wide.yaml", INT8_RTL.format(extra="    impl: rtl:approx_mac_array\n    approx_drop_bits: 6\n    registers: {drop_bits: 16}\n"))),
     "regs_wide.yaml", "drop_bits", "[0, 15]")
case("hwcfg register disagrees with the model", EV("--level", "rtl", "--hw", hwfile("regs_model.yaml", INT8_RTL.format(extra="    impl: rtl:approx_mac_array\n    approx_drop_bits: 6\n    registers: {drop_bits: 3}\n"))),
     "regs_model.yaml", "twin", "drop_bits = 3", "approx_drop_bits 6")
case("hwcfg rtl module not built", EV("--level", "rtl", "--hw", hwfile("regs_nomod.yaml", INT8_RTL.format(extra="    impl: rtl:nowhere\n"))), "regs_nomod.yaml:", "nowhere", "FAULTLINE_USER_RTL")

# --- outputs ----------------------------------------------------------------------------------
case("eval out empty", EV("--out", ""), "--out", "empty")
case("eval out folder missing", EV("--out", W("nodir", "r.json")), "--out", "nodir")
case("eval out is a folder", EV("--out", W("folder")), "--out", "is a folder")
case("eval out on a full disk", EV("--out", "/dev/full"), "/dev/full", "No space left")
os.makedirs(W("readonly"))
os.chmod(W("readonly"), 0o555)
if os.geteuid() != 0:  # root writes anywhere: the read-only folder case is for ordinary users
    case("eval out in a read-only folder", EV("--out", W("readonly", "r.json")), "readonly", "not writable")
case("cycle vcd folder missing", EV("--hw", "rram_memory", "--level", "cycle", "--vcd", W("nodir", "w.vcd")), "nodir")
case("cycle vcd on a device", EV("--hw", "rram_memory", "--level", "cycle", "--vcd", "/dev/full"), "/dev/full", "regular file")
case("train out folder missing", ["train", "--epochs", "1", "--out", W("nodir", "t.onnx")], "nodir")
case("train out is a folder", ["train", "--epochs", "1", "--out", W("folder")], "folder")
case("sweep out folder missing", ["sweep", "--model", model, "--data", data, "--sweep", "units.xbar.adc_bits=6,8", "--hw", hw, "--out", W("nodir", "s")], "nodir")
case("sweep out empty", ["sweep", "--model", model, "--data", data, "--sweep", "units.xbar.adc_bits=6,8", "--hw", hw, "--out", ""], "--out")
case("trace out parents missing", ["trace", "--model", model, "--data", data, "--hw", hw, "--out", W("a", "b", "c")], "--out", "does not exist")
case("trace out is a file", ["trace", "--model", model, "--data", data, "--hw", hw, "--out", hw], "--out", "not a folder")
case("train noise folder without a fit", ["train", "--epochs", "1", "--noise", W("folder"), "--out", W("t.onnx")], "folder")
case("train noise description is hardware", ["train", "--epochs", "1", "--noise", hw, "--out", W("t.onnx")], "hw.yaml")

# --- sweep resume logs ------------------------------------------------------------------------
SWEEP = ["sweep", "--model", model, "--data", data, "--hw", hw, "--sweep", "units.xbar.adc_bits=6,8", "--threads", "1", "--out"]
ok = subprocess.run([faultline] + SWEEP + [W("s")], capture_output=True)
if ok.returncode != 0:
    sys.exit(f"FAIL: the valid sweep that the log cases start from failed: {ok.stderr.decode(errors='replace')}")
log = read(W("s.jsonl")).split(b"\n")
for name, lines, needles in [
        ("sweep log header from another sweep", [b'{"faultline_sweep":1}'] + log[1:], ["s_hdr.jsonl", "different sweep"]),
        ("sweep log corrupt row", [log[0], b'{"row":0,"key":', log[2]], ["s_row.jsonl:2"]),
        ("sweep log row of the wrong type", [log[0], log[1].replace(b'"mean":', b'"mean":"x","m":'), log[2]], ["s_type.jsonl:2", "mean"]),
        ("sweep log rows out of order", [log[0], log[2], log[1]], ["s_order.jsonl:2"]),
        ("sweep log not JSON", [log[0], b"\xff\xfe\x00garbage", log[2]], ["s_bin.jsonl:2"]),
        ("sweep log repeated key", [log[0], log[1].replace(b'"row":0,', b'"row":0,"row":0,'), log[2]], ["s_key.jsonl:2", "repeated"]),
        ("sweep log deep nesting", [log[0], b"[" * 500 + b"]" * 500, log[2]], ["s_deep.jsonl:2"]),
        ("sweep log yaml-cpp hang pattern", [log[0], b"{},{}", log[2]], ["s_hang.jsonl:2"])]:
    stem = needles[0].split(":")[0]
    write(W(stem), b"\n".join(lines[:3]) + b"\n")
    case(name, SWEEP + [W(stem[:-6])], *needles)

# --- report inputs ----------------------------------------------------------------------------
ev = W("ev.json")
ok = subprocess.run([faultline] + EV("--hw", hw, "--trials", "2", "--out", ev), capture_output=True)
if ok.returncode != 0:
    sys.exit(f"FAIL: the valid eval that the report cases start from failed: {ok.stderr.decode(errors='replace')}")
good_ev = read(ev)
REPORT = ["report", "--out", W("rep")]
for cut in [1, len(good_ev) // 2, len(good_ev) - 3]:
    case(f"report input truncated at {cut}", REPORT + [write(W(f"ev{cut}.json"), good_ev[:cut])], f"ev{cut}.json")
case("report deep nesting", REPORT + [write(W("evdeep.json"), b"[" * 100000 + b"]" * 100000)], "evdeep.json")
case("report not UTF-8", REPORT + [write(W("evbin.json"), b'{"a": "\xff\xfe"}')], "evbin.json", "UTF-8")
case("report wrong JSON type", REPORT + [write(W("evtype.json"), good_ev.replace(b'"accuracy":{', b'"cycle_level_per_pass":[],"accuracy":{', 1))], "evtype.json", "cycle_level_per_pass")
case("report accuracy not a number", REPORT + [write(W("evmean.json"), good_ev.replace(b'"mean":', b'"mean":"high","x":', 1))], "evmean.json", "accuracy.mean")
case("report not a result", REPORT + [write(W("evother.json"), b'{"hello": 1}')], "evother.json", "not a faultline result")
case("report empty sweep rows", REPORT + [write(W("evrows.json"), b'{"kind": "grid", "rows": [], "settings": {"data": "d", "hw": "h", "trials": 1, "seed": 1, "axes": []}}')], "evrows.json", "rows")
case("report input missing", REPORT + [W("absent.json")], "absent.json")
# `faultline ipu plan` and its JSON (issue 16).
case("ipu plan out of tile memory", ["ipu", "plan", "--model", model, "--hw", "ipu_small", "--set", "units.ipu.tile_memory_kib=1"],
     "ipu_small", "layer 'fc'", "out of tile memory", "bytes")
case("eval on ipu out of tile memory", EV("--hw", "ipu_small", "--set", "units.ipu.tile_memory_kib=1"), "layer 'fc'", "out of tile memory")
case("ipu unknown action", ["ipu", "draw", "--model", model], "unknown action", "draw")
case("ipu plan without ipu units", ["ipu", "plan", "--model", model, "--hw", "ideal"], "no layer", "ipu")
plan_json = W("plan.json")
ok = subprocess.run([faultline, "ipu", "plan", "--model", model, "--hw", "ipu_small", "--out", plan_json], capture_output=True)
if ok.returncode != 0:
    sys.exit(f"FAIL: the valid ipu plan that the report case starts from failed: {ok.stderr.decode(errors='replace')}")
good_plan = read(plan_json)
case("report ipu plan with a short memory map", REPORT + [write(W("planshort.json"), good_plan.replace(b'"resident":[', b'"resident":[1,', 1))],
     "planshort.json", "resident")
case("report input is a folder", REPORT + [W("folder")], "folder", "is a folder")
case("report out is a file", ["report", "--out", hw, ev], "hw.yaml", "not a folder")
os.makedirs(W("rep2", "report.md"))
case("report report.md is a folder", ["report", "--out", W("rep2"), ev], "report.md", "folder")
case("report out parents missing", ["report", "--out", W("x", "y", "z"), ev], "does not exist")

# --- run --------------------------------------------------------------------------------------
failures = []
env = dict(os.environ, SYSTEMC_DISABLE_COPYRIGHT_MESSAGE="1")
for name, args, needles in cases:
    try:
        p = subprocess.run([faultline] + args, capture_output=True, timeout=300, env=env, cwd=work)
    except subprocess.TimeoutExpired:
        failures.append(f"{name}: no answer within 300 s (a hang)")
        continue
    err = p.stderr.decode("utf-8", errors="replace")
    lines = err.splitlines()
    problems = []
    if p.returncode != 2:
        problems.append(f"exit status {p.returncode}, expected 2")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected 1")
    for n in needles:
        if n not in err:
            problems.append(f"'{n}' not named")
    if os.environ.get("BAD_INPUT_VERBOSE"):
        print(f"{name:45s} {p.returncode} {err.strip()}")
    if problems:
        failures.append(f"{name}: {'; '.join(problems)}\n    faultline {' '.join(args)}\n    stderr: {err.strip()[:400]}")
for f in failures:
    print("FAIL " + f)
print(f"{len(cases) - len(failures)} of {len(cases)} bad-input cases answered with exit 2 and one line naming the file/field")
if not failures:
    print(f"PASS: {len(cases)} cases")
sys.exit(1 if failures else 0)
