#!/usr/bin/python3
"""faultline.torch: PyTorch layers on Faultline hardware give the same bits as Faultline's own
evaluation of the exported model (same hardware, seed, trial and images), program per training
step and per trial as Faultline does, and pass straight-through or secant gradients.

Usage: test_torch_layers.py WORK (WORK holds cnn.pt and cnn.onnx from make_torch_fixture.py)."""
import copy
import os
import sys
import unittest

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
import faultline  # noqa: E402
import faultline.torch as ft  # noqa: E402
from small_cnn import small_cnn  # noqa: E402

WORK = sys.argv[1]
torch.set_num_threads(2)


def trained():
    m = small_cnn()
    m.load_state_dict(torch.load(os.path.join(WORK, "cnn.pt")))
    return m.eval()


class TorchLayers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.test = faultline.load_data("fashion-mnist")
        cls.images = torch.from_numpy(cls.test.images[:1000].copy())
        cls.labels = torch.from_numpy(cls.test.labels[:1000].astype(np.int64))
        cls.onnx = os.path.join(WORK, "cnn.onnx")

    def test_same_bits_as_faultline_on_the_exported_model(self):
        for hw in ["rram_crossbar", "bss2_analog", "ipu_small"]:
            model = ft.convert(trained(), hw, seed=5, threads=2)
            x = self.images[:300]
            with torch.no_grad():
                # Batches of 64 fed in order: samples numbered on across calls, as in one pass.
                ours = torch.cat([model(x[k:k + 64]) for k in range(0, 300, 64)]).numpy()
            theirs = faultline.infer(self.onnx, x.numpy(), hw, seed=5, trial=0)[0]
            np.testing.assert_array_equal(ours, theirs, err_msg=hw)
            # Trial 1 is other hardware; the same trial again is the same bits.
            ft.set_trial(model, 1)
            with torch.no_grad():
                other = model(x[:64]).numpy()
            np.testing.assert_array_equal(other, faultline.infer(self.onnx, x[:64].numpy(), hw, seed=5, trial=1)[0])
            self.assertFalse(np.array_equal(other, ours[:64]))

    def test_accuracy_per_trial_equals_faultline_evaluate(self):
        model = ft.convert(trained(), "rram_crossbar", seed=7)
        mine = []
        for trial in range(3):
            ft.set_trial(model, trial)
            with torch.no_grad():
                predicted = torch.cat([model(self.images[k:k + 100]).argmax(1) for k in range(0, 1000, 100)])
            mine.append((predicted == self.labels).double().mean().item())
        r = faultline.evaluate(self.onnx, "rram_crossbar", trials=3, seed=7, limit=1000, threads=2)
        self.assertEqual(mine, r["accuracy"]["trials"])

    def test_ideal_hardware_is_plain_pytorch_forward_and_backward(self):
        plain = trained().train()
        hw = ft.convert(copy.deepcopy(plain), "ideal").train()
        x, y = self.images[:64], self.labels[:64]
        for backward in ["ste", "secant"]:
            for _, layer in ft.hardware_layers(hw):
                layer.backward_mode = backward
            lp = F.cross_entropy(plain(x), y)
            lh = F.cross_entropy(hw(x), y)
            self.assertAlmostEqual(lp.item(), lh.item(), delta=1e-5)
            gp = torch.autograd.grad(lp, list(plain.parameters()))
            gh = torch.autograd.grad(lh, list(hw.parameters()))
            for a, b in zip(gp, gh):
                torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)

    def test_training_programs_each_step_and_is_reproducible(self):
        def run(steps):
            torch.manual_seed(3)
            model = ft.convert(trained(), "rram_crossbar", seed=2).train()
            opt = torch.optim.SGD(model.parameters(), lr=0.05)
            outputs, losses = [], []
            for s in range(steps):
                x, y = self.images[64 * s:64 * s + 64], self.labels[64 * s:64 * s + 64]
                out = model(x)
                loss = F.cross_entropy(out, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                outputs.append(out.detach())
                losses.append(loss.item())
            return model, outputs, losses
        model, a, la = run(8)
        _, b, lb = run(8)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, rtol=0, atol=0)
        self.assertEqual(la, lb)
        self.assertEqual(ft.hardware_layers(model)[0][1].step, 8)
        # Fresh programming noise per step: the same input at two steps differs.
        model.train()
        x = self.images[:8]
        with torch.no_grad():
            self.assertFalse(torch.equal(model(x), model(x)))

    def test_secant_scales_gradients_by_the_gain(self):
        torch.manual_seed(0)
        lin = nn.Sequential(nn.Linear(20, 5))
        hw_lin = ft.convert(copy.deepcopy(lin), "bss2_analog", backward="secant").train()
        x = torch.randn(16, 20, requires_grad=True)
        out = hw_lin(x)
        dy = torch.randn_like(out)
        out.backward(dy)
        layer = ft.hardware_layers(hw_lin)[0][1]
        with torch.no_grad():
            exact = F.linear(x, lin[0].weight)
            gain = ft._secant_gain(out - lin[0].bias, exact)
        self.assertTrue(((gain >= 0) & (gain <= 1)).all())
        self.assertLess(gain.min().item(), 1.0)  # the membrane compresses some outputs
        torch.testing.assert_close(layer.weight.grad, (dy * gain).t() @ x.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(x.grad, (dy * gain) @ lin[0].weight, rtol=1e-4, atol=1e-5)

    def test_weight_change_reprograms_in_evaluation(self):
        model = ft.convert(trained(), "rram_crossbar", seed=1)
        x = self.images[:16]
        with torch.no_grad():
            before = model(x)
            ft.new_pass(model)
            np.testing.assert_array_equal(model(x).numpy(), before.numpy())  # same trial, same pass start
            model[-1].weight.mul_(2)
            ft.new_pass(model)
            after = model(x)
        self.assertFalse(torch.equal(before, after))

    def test_calibrated_kind_and_errors(self):
        model = ft.convert(trained(), "vta", seed=1)
        with self.assertRaises(faultline.Error) as e, torch.no_grad():
            model(self.images[:4])
        self.assertIn("calibrate", str(e.exception))
        # Faultline calibrates on the first 256 images of the evaluated data: so do we.
        ft.calibrate(model, self.images[:256])
        r = faultline.evaluate(self.onnx, "vta", seed=1, limit=256, threads=2, layer_errors=False)
        with torch.no_grad():
            predicted = torch.cat([model(self.images[k:k + 64]).argmax(1) for k in range(0, 256, 64)])
        self.assertEqual((predicted == self.labels[:256]).double().mean().item(), r["accuracy"]["mean"])
        with self.assertRaises(faultline.Error) as e:
            ft.convert(trained(), {"name": "sites", "noise": [{"after": "*", "additive": 0.1}]})
        self.assertIn("noise sites", str(e.exception))
        with self.assertRaises(faultline.Error):
            ft.convert(nn.Sequential(nn.Conv2d(1, 2, 3, padding="same")), "ideal")
        with self.assertRaises(faultline.Error):
            ft.convert(trained(), "ideal", backward="guess")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
