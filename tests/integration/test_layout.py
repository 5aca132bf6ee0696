"""The two halves of common/ stay apart (README "Layout"): no runtime file in
common/ includes a header of common/ml/; the services that run no model
(filter, orchestrator, consumer, cli) do not load OpenBLAS, and the ones that
do (recall, prerank, rank, rerank) call cascade_ml_init, which sets it to one
thread per caller (tests/unit/ml/test_ml.c checks what it does)."""

import os
import re
import subprocess
import unittest

SOURCE_DIR = os.environ.get(
    "CASCADE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("CASCADE_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
COMMON = os.path.join(SOURCE_DIR, "common")
ML = os.path.join(COMMON, "ml")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def needed_libs(binary):
    """The shared libraries the dynamic loader maps for binary (ldd)."""
    res = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise AssertionError(f"ldd {binary}: {res.stderr.strip()}")
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def defined_symbols(binary):
    res = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        raise AssertionError(f"nm {binary}: {res.stderr.strip()}")
    return {line.split()[-1] for line in res.stdout.splitlines() if line.strip()}


class LayoutTest(unittest.TestCase):
    def test_runtime_includes_no_ml_header(self):
        ml_headers = {f for f in os.listdir(ML) if f.endswith(".h")}
        self.assertIn("nn.h", ml_headers)  # the listing found the ML half
        offenders = []
        for name in sorted(os.listdir(COMMON)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(COMMON, name), encoding="utf-8") as f:
                for inc in INCLUDE.findall(f.read()):
                    if os.path.basename(inc) in ml_headers or inc.startswith("ml/"):
                        offenders.append(f"common/{name} includes {inc}")
        self.assertEqual(offenders, [], "the runtime half includes ML headers")

    def test_services_without_models_do_not_load_openblas(self):
        for svc in ("filter", "orchestrator", "consumer", "cli"):
            libs = needed_libs(os.path.join(BIN_DIR, f"cascade-{svc}"))
            self.assertTrue(any(lib.startswith("libc.so") for lib in libs), libs)
            blas = [lib for lib in libs if "blas" in lib.lower()]
            self.assertEqual(blas, [], f"cascade-{svc} loads {blas}")

    def test_model_services_set_up_openblas(self):
        for svc in ("recall", "prerank", "rank", "rerank"):
            binary = os.path.join(BIN_DIR, f"cascade-{svc}")
            self.assertTrue(any("openblas" in lib for lib in needed_libs(binary)), svc)
            self.assertIn("cascade_ml_init", defined_symbols(binary), svc)


if __name__ == "__main__":
    unittest.main()
