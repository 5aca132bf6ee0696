"""Parity of our MMoE forward pass (common/ml/mmoe.h) with torch: torch builds
the notes' MMoE (seeded, float32, CPU), writes its state_dict as safetensors
(scripts/bench/mmoe_torch.py), and cascade-bench-mmoe --predict runs the same
file on the same inputs. Logits and served values must agree to 1e-5
(relative for exp(z) of watch time). Skips (exit 77, shown by ctest as skipped) only when python3-torch is missing.
MMOE_PARITY_VERBOSE=1 prints each task's largest logit difference."""
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import numpy as np
    import torch
except ImportError:
    print("SKIP: python3-torch is not installed (apt-get install python3-torch python3-numpy, "
          "see scripts/install-deps.sh)")
    sys.exit(77)  # ctest's SKIP_RETURN_CODE (tests/CMakeLists.txt): reported as skipped

SOURCE_DIR = os.environ.get("CASCADE_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN_DIR = os.environ.get("CASCADE_BIN_DIR") or os.path.join(SOURCE_DIR, "build", "bin")
sys.path.insert(0, os.path.join(SOURCE_DIR, "scripts", "bench"))
import mmoe_torch  # noqa: E402

TOL = 1e-5
ROWS = 300  # more than the helper's scratch batch of 256: the chunked path runs too


class MMoEParityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="cascade-mmoe-parity-")
        self.bin = os.path.join(BIN_DIR, "cascade-bench-mmoe")
        self.assertTrue(os.access(self.bin, os.X_OK), f"{self.bin} not built")

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_c(self, model_path, x):
        """Our served predictions and logits [n, tasks] for x, and stdout."""
        x.numpy().astype("<f4").tofile(self.path("x.f32"))
        res = subprocess.run([self.bin, "--model", model_path, "--predict", self.path("x.f32"),
                              "--out", self.path("p.f32"), "--logits-out", self.path("z.f32")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        n = x.shape[0]
        p = np.fromfile(self.path("p.f32"), dtype="<f4").reshape(n, -1)
        z = np.fromfile(self.path("z.f32"), dtype="<f4").reshape(n, -1)
        return p, z, res.stdout

    def check(self, model, x):
        path = self.path("model.safetensors")
        mmoe_torch.save(model, path)
        tasks = model.cascade_config["tasks"]
        with torch.inference_mode():
            z_torch = model.logits(x).numpy()
            p_torch = mmoe_torch.served(model, x).numpy()
            notes = torch.cat(model(x), dim=1).numpy()  # the notes' forward: sigmoid outputs
        p_c, z_c, out = self.run_c(path, x)
        self.assertIn("tasks " + ",".join(tasks), out)
        self.assertEqual(z_c.shape, (x.shape[0], len(tasks)))
        # The logits are not degenerate: they vary across rows for every task.
        self.assertTrue(np.all(z_torch.std(axis=0) > 1e-2), z_torch.std(axis=0))
        for t, name in enumerate(tasks):
            dz = np.max(np.abs(z_c[:, t] - z_torch[:, t]))
            if os.environ.get("MMOE_PARITY_VERBOSE"):
                print(f"{name}: logit max |diff| {dz:.3g} (|z| up to "
                      f"{np.max(np.abs(z_torch[:, t])):.3g})", file=sys.stderr)
            self.assertLessEqual(dz, TOL, f"task {name}: logit max |diff| {dz:.3g}")
            if name == "watch_time":  # exp(z): relative
                rel = np.max(np.abs(p_c[:, t] - p_torch[:, t]) / np.maximum(1.0, p_torch[:, t]))
                self.assertLessEqual(rel, TOL, f"watch_time: served relative diff {rel:.3g}")
            else:
                dp = np.max(np.abs(p_c[:, t] - notes[:, t]))
                self.assertLessEqual(dp, TOL, f"task {name}: sigmoid max |diff| {dp:.3g}")
        return z_c

    def test_default_tasks(self):
        model = mmoe_torch.build(seed=1)  # 16 inputs, 4 experts of 32, towers 16, 6 tasks
        with torch.no_grad():  # sharper gates than torch's init, so the mixture matters
            for gate in model.gates:
                gate.weight.mul_(4.0)
        x = torch.randn(ROWS, 16, generator=torch.Generator().manual_seed(2))
        self.check(model, x)

    def test_small_config(self):
        model = mmoe_torch.build(input_dim=7, experts=3, expert_hidden=5, tower_hidden=3,
                                 tasks="watch_time,click", seed=11)
        x = 2.0 * torch.randn(40, 7, generator=torch.Generator().manual_seed(3))
        self.check(model, x)

    def test_changed_weight_is_detected(self):
        # The comparison is sensitive: one weight nudged by 1e-3 in torch breaks parity.
        model = mmoe_torch.build(seed=5)
        x = torch.randn(64, 16, generator=torch.Generator().manual_seed(4))
        path = self.path("model.safetensors")
        mmoe_torch.save(model, path)
        with torch.no_grad():
            model.towers[0][2].bias.add_(1e-3)
            z_torch = model.logits(x).numpy()
        _, z_c, _ = self.run_c(path, x)
        self.assertGreater(np.max(np.abs(z_c[:, 0] - z_torch[:, 0])), 5e-4)

    def test_file_without_metadata_is_refused(self):
        model = mmoe_torch.build(seed=1)
        tensors = {k: v.numpy() for k, v in model.state_dict().items()}
        path = self.path("plain.safetensors")
        mmoe_torch.write_safetensors(path, tensors, {"format": "pt"})
        x = torch.zeros(1, 16)
        x.numpy().astype("<f4").tofile(self.path("x.f32"))
        res = subprocess.run([self.bin, "--model", path, "--predict", self.path("x.f32"),
                              "--out", self.path("p.f32")], capture_output=True, text=True,
                             timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("not an MMoE model", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
