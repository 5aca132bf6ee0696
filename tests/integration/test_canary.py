"""Sticky per-stage canary on the real stack: the rank stage's endpoint is a
group {stable: the stack's cascade-rank, canary: a second cascade-rank this
test starts}, weights 1:1. Every Recommend of one user must reach the same
rank process (100% of its calls, read from each process's own
cascade_rpc_requests_total for Rank/Score, not from the orchestrator), the
debug trace and cascade_orchestrator_track_requests_total name that track,
and over many users both tracks are used."""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
USERS = 24
CALLS = 3
RANK_CALLS = re.compile(r'^cascade_rpc_requests_total\{method="cascade\.v1\.Rank/Score",'
                        r'code="[A-Z_]+"\} (\S+)$', re.M)


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (port + 1000),
                                timeout=TIMEOUT_S) as r:
        return r.read().decode()


def rank_calls(port):
    return sum(float(v) for v in RANK_CALLS.findall(metrics(port)))


class CanaryTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-canary-"
    WORLD = {"users": 200, "items": 200, "events": 6000, "seed": 5, "train": False}
    canary = None

    @classmethod
    def stack_options(cls):
        # The shipped config with rank split into a stable and a canary track.
        with open(cls.config) as f:
            doc = json.load(f)
        doc["orchestrator"]["stages"]["rank"]["endpoint"] = [
            {"track": "stable", "endpoint": "rank", "weight": 1},
            {"track": "canary", "endpoint": "rank_canary", "weight": 1}]
        with open(cls.config, "w") as f:
            json.dump(doc, f)
        cls.canary_port = tl.free_port_base()
        return {"sets": ["orchestrator.endpoints.rank_canary=127.0.0.1:%d" % cls.canary_port]}

    @classmethod
    def set_up_class(cls):
        cls.canary_log = open(os.path.join(cls.tmp.path, "rank-canary.log"), "w")
        cls.canary = subprocess.Popen(
            [tl.bin_path("cascade-rank"), "--config", cls.config, "--redis",
             "127.0.0.1:%d" % cls.stack.redis_port, "--model-dir", cls.stack.model_dir,
             "--listen", "127.0.0.1:%d" % cls.canary_port],
            stdout=cls.canary_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT_S
        while True:  # poll the canary's metrics endpoint until it serves
            try:
                metrics(cls.canary_port)
                break
            except OSError:
                if time.monotonic() > deadline or cls.canary.poll() is not None:
                    raise RuntimeError("canary rank did not start")
                time.sleep(0.05)

    @classmethod
    def tear_down_class(cls):
        if cls.canary:
            cls.canary.terminate()
            cls.canary.wait(timeout=30)
            cls.canary_log.close()

    def test_sticky_tracks(self):
        stub = self.pb.recommender_grpc.RecommenderStub(
            grpc.insecure_channel(self.stack.addr()))
        ports = {"stable": self.stack.ports["rank"], "canary": self.canary_port}
        seen = {"stable": 0, "canary": 0}
        for u in range(USERS):
            user = "canary-user-%d" % u
            before = {t: rank_calls(p) for t, p in ports.items()}
            traces = set()
            for _ in range(CALLS):
                resp = stub.Recommend(self.pb.recommender.RecommendRequest(
                    user=self.pb.common.UserContext(user_id=user), count=5, debug=True),
                    timeout=TIMEOUT_S)
                self.assertGreater(len(resp.items), 0)
                self.assertFalse(resp.degraded, list(resp.degraded_reasons))
                traces.update(t.message for t in resp.trace if t.stage == "track")
            moved = {t: rank_calls(p) - before[t] for t, p in ports.items()}
            hit = [t for t, n in moved.items() if n > 0]
            self.assertEqual(len(hit), 1, "%s: rank calls went to %s" % (user, moved))
            self.assertGreaterEqual(moved[hit[0]], CALLS)
            self.assertEqual(traces, {"rank=" + hit[0]})
            seen[hit[0]] += 1
        self.assertGreater(seen["stable"], 0, seen)
        self.assertGreater(seen["canary"], 0, seen)
        orch = metrics(self.stack.ports["orchestrator"])
        for track, users in seen.items():
            m = re.search(r'^cascade_orchestrator_track_requests_total\{stage="rank",'
                          r'track="%s"\} (\S+)$' % track, orch, re.M)
            self.assertIsNotNone(m, track)
            self.assertEqual(float(m.group(1)), users * CALLS, track)


if __name__ == "__main__":
    unittest.main(verbosity=2)
