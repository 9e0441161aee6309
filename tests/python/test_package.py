#!/usr/bin/python3
"""The Python package against the command line: the same documents and bits, errors as
faultline.Error with the one-line message, datasets, sweeps with resume, traces, kinds, a probed
substrate, thread independence and the GIL released during simulation.

Usage: test_package.py FAULTLINE_BINARY WORK (WORK holds cnn.onnx from make_torch_fixture.py)."""
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

import numpy as np

import faultline

BINARY, WORK = sys.argv[1], sys.argv[2]
MODEL = os.path.join(WORK, "cnn.onnx")
TMP = os.path.join(WORK, "package")


def cli(*args):
    r = subprocess.run([BINARY, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(TMP, ignore_errors=True)
        os.makedirs(TMP)
        cls.model = faultline.load_model(MODEL)
        cls.test = faultline.load_data("fashion-mnist")

    def test_evaluate_is_the_cli_document(self):
        r = faultline.evaluate(self.model, "rram_crossbar", trials=2, seed=3, limit=300, threads=2)
        out = os.path.join(TMP, "eval.json")
        code, _, err = cli("eval", "--model", MODEL, "--hw", "rram_crossbar", "--trials", "2", "--seed", "3", "--limit", "300",
                           "--threads", "1", "--out", out)
        self.assertEqual(code, 0, err)
        with open(out) as f:
            document = json.load(f)
        self.assertEqual(dict(r), document)  # every accuracy and counter to the bit; 2 threads vs 1
        self.assertIn("accuracy", r.table)
        self.assertEqual(r["preprocessing"], {"format": "idx", "layout": "nchw", "scale": "1/255"})
        self.assertEqual(len(r["layers"]), 4)

    def test_cycle_level_once_per_process(self):
        r = faultline.evaluate(self.model, "rram_crossbar", level="cycle", limit=64, threads=2)
        out = os.path.join(TMP, "cycle.json")
        code, _, err = cli("eval", "--model", MODEL, "--hw", "rram_crossbar", "--level", "cycle", "--limit", "64", "--out", out)
        self.assertEqual(code, 0, err)
        with open(out) as f:
            self.assertEqual(dict(r), json.load(f))
        self.assertIn("cycles", r.table)
        with self.assertRaises(faultline.Error) as e:
            faultline.evaluate(self.model, "rram_crossbar", level="cycle", limit=64)
        self.assertIn("once per Python process", str(e.exception))

    def test_hardware_from_dict_and_overrides(self):
        as_dict = {"name": "xbar6", "units": {"xbar": {"kind": "analog_crossbar", "adc_bits": 6}},
                   "mapping": [{"layers": "*", "unit": "xbar"}]}
        hw = faultline.hardware(as_dict)
        self.assertEqual(hw.units[0]["params"]["adc_bits"], 6)
        self.assertEqual(hw.source, "<dict>")
        over = faultline.hardware("rram_crossbar", {"units.xbar.adc_bits": 5})
        self.assertEqual(over.units[0]["params"]["adc_bits"], 5)
        self.assertEqual(over.unit_for("fc", "Gemm"), "xbar")
        with self.assertRaises(faultline.Error) as e:
            faultline.hardware("rram_crossbar", {"units.xbar.adc_bits": 99})
        self.assertIn("adc_bits", str(e.exception))
        self.assertNotIn("\n", str(e.exception))
        with self.assertRaises(faultline.Error) as e:
            faultline.hardware({"name": "bad", "units": {"u": {"kind": "no_such_kind"}}})
        self.assertIn("no_such_kind", str(e.exception))
        self.assertIsInstance(e.exception, ValueError)

    def test_errors_carry_the_one_line_message(self):
        for call, needle in [
            (lambda: faultline.load_model(os.path.join(TMP, "absent.onnx")), "absent.onnx"),
            (lambda: faultline.evaluate(self.model, "ideal", level="gate", limit=10), "level"),
            (lambda: faultline.evaluate(self.model, "ideal", trials=0, limit=10), "trials"),
            (lambda: faultline.load_data(TMP + "/nowhere"), "nowhere"),
            (lambda: faultline.load_data("fashion-mnist", normalize="1:0"), "normalize"),
            (lambda: faultline.substrate("analog_crossbar", {"adc_bits": 99}), "adc_bits"),
            (lambda: faultline.substrate("analog_crossbar", {"no_param": 1}), "no_param"),
            (lambda: faultline.substrate("ideal").multiply(np.zeros((2, 3), np.float32)), "program"),
            (lambda: faultline.infer(self.model, np.zeros((1, 1, 14, 14), np.float32)), "input"),
        ]:
            with self.assertRaises(faultline.Error, msg=needle) as e:
                call()
            self.assertIn(needle, str(e.exception))
            self.assertNotIn("\n", str(e.exception))

    def test_infer_is_the_cli_infer(self):
        x = self.test.images[:20].copy()
        np.save(os.path.join(TMP, "x.npy"), x)
        y_py = faultline.infer(self.model, x, "rram_crossbar", seed=4)[0]
        code, _, err = cli("infer", "--model", MODEL, "--hw", "rram_crossbar", "--seed", "4", "--input", os.path.join(TMP, "x.npy"),
                           "--output", os.path.join(TMP, "y.npy"))
        self.assertEqual(code, 0, err)
        np.testing.assert_array_equal(y_py, np.load(os.path.join(TMP, "y.npy")))
        self.assertFalse(np.array_equal(y_py, faultline.infer(self.model, x, "rram_crossbar", seed=4, trial=1)[0]))

    def test_datasets(self):
        # The dataset's arrays are views of its storage (no copy).
        images = self.test.images
        self.assertFalse(images.flags.owndata)
        self.assertFalse(images.flags.writeable)
        self.assertEqual(images.shape, (10000, 1, 28, 28))
        self.assertEqual(self.test.class_names[0], "T-shirt/top")
        # A float32 NHWC images.npy folder with a normalization is evaluated as the CLI does.
        folder = os.path.join(TMP, "npyset")
        os.makedirs(folder)
        np.save(os.path.join(folder, "images.npy"), images[:200].transpose(0, 2, 3, 1).copy())
        np.save(os.path.join(folder, "labels.npy"), self.test.labels[:200].astype(np.int64))
        data = faultline.load_data(folder, layout="nhwc", normalize=([0.5], [2.0]))
        np.testing.assert_array_equal(data.images, (images[:200] - np.float32(0.5)) / np.float32(2.0))
        r = faultline.evaluate(self.model, "ideal", data, threads=1)
        self.assertEqual(r["preprocessing"]["normalize"], {"mean": [0.5], "std": [2.0]})
        code, _, err = cli("eval", "--model", MODEL, "--data", folder, "--layout", "nhwc", "--normalize", "0.5:2", "--out",
                           os.path.join(TMP, "npy.json"))
        self.assertEqual(code, 0, err)
        with open(os.path.join(TMP, "npy.json")) as f:
            self.assertEqual(json.load(f)["accuracy"], r["accuracy"])
        # Arrays straight from NumPy.
        arrays = faultline.dataset(images[:200], self.test.labels[:200].astype(np.int64))
        a = faultline.evaluate(self.model, "ideal", arrays, threads=1)
        b = faultline.evaluate(self.model, "ideal", limit=200, threads=1)
        self.assertEqual(a["accuracy"], b["accuracy"])

    def test_sweep_resumes_from_its_log(self):
        prefix = os.path.join(TMP, "grid")
        rows = []
        first = faultline.sweep(self.model, {"units.xbar.adc_bits": "4,8"}, hw="rram_crossbar", trials=2, limit=100, threads=2,
                                out=prefix, on_row=rows.append)
        self.assertEqual([r["resumed"] for r in rows], [False, False])
        again = []
        second = faultline.sweep(self.model, {"units.xbar.adc_bits": "4,8"}, hw="rram_crossbar", trials=2, limit=100, threads=1,
                                 out=prefix, on_row=again.append)
        self.assertEqual([r["resumed"] for r in again], [True, True])
        self.assertEqual(first, second)
        self.assertTrue(os.path.exists(prefix + ".csv"))
        code, out, err = cli("sweep", "--model", MODEL, "--hw", "rram_crossbar", "--sweep", "units.xbar.adc_bits=4,8", "--trials", "2",
                             "--limit", "100", "--out", os.path.join(TMP, "grid_cli"))
        self.assertEqual(code, 0, err)
        with open(os.path.join(TMP, "grid_cli.json")) as f:
            cli_doc = json.load(f)
        self.assertEqual([r["accuracy"] for r in cli_doc["rows"]], [r["accuracy"] for r in first["rows"]])

    def test_walking_noise(self):
        w = faultline.walking_noise(self.model, "additive", sigma="log:0.01:10:4", trials=1, limit=100, threads=2, max_bisections=2)
        midpoints = w["walking_noise"]["midpoints"]
        self.assertEqual([m["layer"] for m in midpoints], [layer["name"] for layer in self.model.layers])
        # Inside its final bracket (up to the rounding of the log-linear interpolation at its ends).
        self.assertTrue(all(m["sigma_lo"] * (1 - 1e-12) <= m["midpoint"] <= m["sigma_hi"] * (1 + 1e-12) for m in midpoints if m["found"]))
        self.assertTrue(all("midpoint_ci" not in m for m in midpoints))  # one trial: no interval
        w2 = faultline.walking_noise(self.model, "additive", sigma="log:0.01:10:4", trials=2, limit=100, threads=2, max_bisections=2)
        for m in w2["walking_noise"]["midpoints"]:
            if m["found"]:
                low, high = m["midpoint_ci"]
                self.assertTrue((low is None or low <= m["midpoint"]) and (high is None or m["midpoint"] <= high), m)
        with self.assertRaises(faultline.Error):
            faultline.walking_noise(self.model, "sideways")

    def test_trace_and_fitted_replay(self):
        t = faultline.trace(self.model, "rram_crossbar", os.path.join(TMP, "trace"), limit=100, max_samples=256, threads=2)
        self.assertTrue(os.path.exists(os.path.join(TMP, "trace", "trace.json")))
        self.assertEqual(len(t["fits"]["layers"]), 4)
        replay = faultline.evaluate(self.model, t["noise_from_trace"], limit=100, threads=2)
        self.assertGreater(replay["accuracy"]["mean"], 0.3)

    def test_kinds_and_presets(self):
        kinds = {k["name"]: k for k in faultline.hw_kinds()}
        self.assertIn("analog_crossbar", kinds)
        adc = [p for p in kinds["analog_crossbar"]["params"] if p["name"] == "adc_bits"][0]
        self.assertEqual(adc["type"], "integer")
        self.assertTrue(adc["doc"])
        self.assertIn("rram_crossbar", faultline.hw_presets())

    def test_substrate_probe(self):
        rng = np.random.default_rng(1)
        w = rng.standard_normal((10, 300)).astype(np.float32) * 0.1
        x = rng.standard_normal((130, 300)).astype(np.float32)
        ideal = faultline.substrate("ideal").program(w)
        np.testing.assert_allclose(ideal.multiply(x), x @ w.T, rtol=1e-5, atol=1e-5)
        xbar = faultline.substrate("rram_crossbar", unit="xbar")
        self.assertEqual(xbar.kind, "analog_crossbar")
        xbar.program(w, seed=2, trial=0)
        y1 = xbar.multiply(x, threads=1)
        self.assertEqual(xbar.shape, (10, 300))
        np.testing.assert_array_equal(y1, xbar.multiply(x, threads=2))
        np.testing.assert_array_equal(y1[64:], xbar.multiply(x[64:], first_row=64))  # read noise keyed by row
        self.assertFalse(np.array_equal(y1, xbar.program(w, seed=2, trial=1).multiply(x)))
        self.assertTrue(xbar.counters())
        err = np.sqrt(np.mean((y1 - x @ w.T) ** 2)) / np.sqrt(np.mean((x @ w.T) ** 2))
        self.assertGreater(err, 1e-4)
        self.assertLess(err, 0.5)

    def test_gil_is_released_during_evaluation(self):
        started, done = threading.Event(), threading.Event()
        ticks = []

        def work():
            started.set()
            faultline.evaluate(self.model, "rram_crossbar", trials=3, threads=1, limit=3000)
            done.set()

        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        # This loop runs while the evaluation (about a second) does, unless it holds the GIL: then
        # it gets at most the one or two turns before the worker enters the call.
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)
        worker.join()
        self.assertGreater(len(ticks), 50)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
