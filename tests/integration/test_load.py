"""End-to-end test of cascade-load against the real stack (scripts/stack.sh
on free ports, a small generated world): ghz's JSON report of a closed-loop
and an open-loop run of Recommend with templated user ids, every call
counted; answers counted as degraded once the rank stage is stopped (the
orchestrator still answers, with degraded = true); bad flags and a dead
server give a readable line and a non-zero exit. Everything is torn down even
on failure."""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

CALL = "cascade.v1.Recommender.Recommend"
# u1..u200 exist in the generated world (ids u<i>, i from 1).
DATA = '{"user":{"userId":"u{{randomInt 1 201}}","requestId":"{{.UUID}}"},"count":10}'


def load(*args):
    return subprocess.run([tl.bin_path("cascade-load")] + list(args), capture_output=True,
                          text=True, timeout=300)


class LoadTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-load-"
    STUBS = False

    def run_json(self, *args):
        res = load("--call", CALL, "--insecure", "-O", "json", "-d", DATA, *args,
                   self.stack.addr())
        self.assertEqual(res.returncode, 0, res.stderr)
        return json.loads(res.stdout)

    def test_1_closed_and_open_loop(self):
        rep = self.run_json("-n", "40", "-c", "4", "--connections", "2",
                            "--proto", os.path.join(tl.SOURCE_DIR, "proto", "cascade", "v1",
                                                    "recommender.proto"))
        self.assertEqual(rep["count"], 40)
        self.assertEqual(rep["statusCodeDistribution"], {"OK": 40})
        self.assertEqual(rep["errorDistribution"], {})
        self.assertEqual(len(rep["details"]), 40)
        self.assertEqual(rep["degraded"], 0)
        self.assertLessEqual(rep["fastest"], rep["average"])
        self.assertLessEqual(rep["average"], rep["slowest"])
        # Open loop: 30 calls due 20 ms apart.
        rep = self.run_json("-n", "30", "-c", "4", "--rps", "50")
        self.assertEqual(rep["count"], 30)
        self.assertEqual(rep["statusCodeDistribution"], {"OK": 30})
        self.assertEqual(rep["options"]["rps"], 50)

    def test_2_degraded_answers_counted(self):
        self.stack.terminate("rank")
        rep = self.run_json("-n", "10", "-c", "2")
        self.assertEqual(rep["statusCodeDistribution"], {"OK": 10})
        self.assertEqual(rep["degraded"], 10)

    def test_bad_flags_and_dead_server(self):
        res = load("--call", "cascade.v1.Recommender.Nope", self.stack.addr())
        self.assertEqual(res.returncode, 2)
        self.assertIn("service cascade.v1.Recommender has no method Nope", res.stderr)
        res = load("--call", CALL, "-d", '{"user":{"userId":1}}', self.stack.addr())
        self.assertEqual(res.returncode, 1)
        self.assertIn("cascade.v1.UserContext.user_id: expected a string", res.stderr)
        # A run that cannot start writes no -o file.
        out = os.path.join(self.tmp.path, "report.json")
        res = load("--call", CALL, "-d", "{\"count\":-1}", "-o", out, self.stack.addr())
        self.assertEqual(res.returncode, 1)
        self.assertFalse(os.path.exists(out))
        res = load("--call", CALL, "--insecure", "-n", "2", "-c", "1", "-O", "json", "-o", out,
                   "-d", DATA, self.stack.addr())
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(out) as f:
            self.assertEqual(json.load(f)["count"], 2)
        # A dead server: the calls fail UNAVAILABLE and are reported as such.
        port = tl.free_port_base(span=1)
        res = load("--call", CALL, "--insecure", "-O", "json", "-n", "3", "-c", "1",
                   "-d", DATA, "127.0.0.1:%d" % port)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(json.loads(res.stdout)["statusCodeDistribution"], {"Unavailable": 3})


if __name__ == "__main__":
    unittest.main()
