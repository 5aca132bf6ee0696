"""Config hot reload on the real stack (scripts/stack.sh, real redis-server,
the six services): SIGHUP makes the orchestrator re-read its --config.

- A good config starts an experiment without a restart: the same process
  (same pid) answers the next Recommend with the new assignment, and
  cascade_config_info names the new hash; a change to the orchestrator
  section is logged as needing a restart.
- A bad config (an experiment parameter no stage reads, then a file that
  is not JSON) is rejected with its error in the log, and the old config
  keeps serving: same assignment, same cascade_config_info hash.
- A stage without live changes logs that its changed section needs a restart.
Each wait polls /metrics (the reload counter) with a deadline; no sleeps."""

import copy
import json
import os
import re
import signal
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
USERS = ["reload-user-%d" % i for i in range(20)]
NO_EXPERIMENTS = {
    "buckets": 1000, "holdout": [],
    "layers": [{"name": "rerank", "salt": "reload-rerank", "experiments": []}],
}


def with_experiment(experiments, params):
    exp = copy.deepcopy(experiments)
    exp["layers"][0]["experiments"] = [
        {"name": "mmr_live", "ranges": [[0, 999]], "params": params}]
    return exp


class ReloadTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-reload-"
    CONFIG = {"experiments": NO_EXPERIMENTS}
    WORLD = {"users": 200, "items": 200, "events": 6000, "seed": 3, "train": False}

    @classmethod
    def stack_options(cls):
        with open(cls.config) as f:
            cls.base_cfg = json.load(f)
        return {}

    # ---- helpers

    def metrics(self, name):
        url = "http://127.0.0.1:%d/metrics" % (self.stack.ports[name] + 1000)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            return r.read().decode()

    def reloads(self, name, result):
        m = re.search(r'^cascade_config_reloads_total\{result="%s"\} (\S+)$' % result,
                      self.metrics(name), re.M)
        return float(m.group(1)) if m else 0.0

    def active_config(self, name):
        found = re.findall(r'^cascade_config_info\{hash="([0-9a-f]{16})",version="([^"]*)"\} 1$',
                           self.metrics(name), re.M)
        self.assertEqual(len(found), 1, "exactly one active config")
        return found[0]

    def write(self, cfg_or_text):
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write(cfg_or_text if isinstance(cfg_or_text, str) else json.dumps(cfg_or_text))
        os.replace(tmp, self.config)

    def sighup(self, name, result):
        """SIGHUP `name` and wait until its reload counter for result moves."""
        before = self.reloads(name, result)
        os.kill(self.stack.pid(name), signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT_S
        while self.reloads(name, result) <= before:
            if time.monotonic() > deadline:
                self.fail("%s: no %s reload within %ds\n%s" % (
                    name, result, TIMEOUT_S, self.stack.log_tail(name, 40)))
            time.sleep(0.05)  # polling interval of the metric, not a synchronisation

    def assignments(self):
        stub = self.pb.recommender_grpc.RecommenderStub(
            grpc.insecure_channel(self.stack.addr()))
        out = {}
        for user in USERS:
            resp = stub.Recommend(self.pb.recommender.RecommendRequest(
                user=self.pb.common.UserContext(user_id=user), count=5, debug=True),
                timeout=TIMEOUT_S)
            self.assertGreater(len(resp.items), 0)
            layers = {la.layer: la.experiment for la in resp.experiments.layers}
            trace = [t.message for t in resp.trace if t.stage == "config"]
            out[user] = (layers.get("rerank"), trace)
        return out

    def log(self, name):
        with open(os.path.join(self.stack.data_dir, name + ".log")) as f:
            return f.read()

    # ---- the test (one method: each step builds on the previous config)

    def test_reload(self):
        pid = self.stack.pid("orchestrator")
        first_hash, _ = self.active_config("orchestrator")
        before = self.assignments()
        self.assertEqual({a for a, _ in before.values()}, {"baseline"})

        # Good config: an experiment starts, and merge_max changes (needs restart).
        good = copy.deepcopy(self.base_cfg)
        good["experiments"] = with_experiment(NO_EXPERIMENTS, {"rerank.lambda": 0.5})
        good["orchestrator"]["merge_max"] = 1500
        self.write(good)
        self.sighup("orchestrator", "ok")
        self.assertEqual(self.stack.pid("orchestrator"), pid, "no restart")
        good_hash, version = self.active_config("orchestrator")
        self.assertNotEqual(good_hash, first_hash)
        self.assertTrue(version.startswith("mtime:"), version)
        after = self.assignments()
        self.assertEqual({a for a, _ in after.values()}, {"mmr_live"})
        for _, trace in after.values():
            self.assertEqual(trace, ["version %s hash %s" % (version, good_hash)])
        log = self.log("orchestrator")
        self.assertIn("config reloaded: version %s hash %s" % (version, good_hash), log)
        self.assertIn('config reload: section "orchestrator" changed: cascade-orchestrator '
                      'applies it only at restart', log)

        # Bad config: a parameter no stage owns. Rejected, old config serves.
        bad = copy.deepcopy(good)
        bad["experiments"] = with_experiment(NO_EXPERIMENTS, {"rerank.lamda": 0.5})
        self.write(bad)
        self.sighup("orchestrator", "rejected")
        self.assertIn('config reload rejected: experiments: layer "rerank" experiment '
                      '"mmr_live": unknown parameter "rerank.lamda"', self.log("orchestrator"))
        self.assertEqual(self.active_config("orchestrator"), (good_hash, version))
        self.assertEqual({a for a, _ in self.assignments().values()}, {"mmr_live"})

        # Not JSON at all: rejected with the parser's position.
        self.write('{"experiments": ')
        self.sighup("orchestrator", "rejected")
        self.assertRegex(self.log("orchestrator"),
                         r"config reload rejected: .*cascade\.json:\d+:\d+: ")
        self.assertEqual(self.active_config("orchestrator"), (good_hash, version))
        self.assertEqual({a for a, _ in self.assignments().values()}, {"mmr_live"})

        # The experiment stops without a restart.
        stop = copy.deepcopy(good)
        stop["experiments"] = NO_EXPERIMENTS
        self.write(stop)
        self.sighup("orchestrator", "ok")
        self.assertEqual({a for a, _ in self.assignments().values()}, {"baseline"})
        self.assertEqual(self.stack.pid("orchestrator"), pid, "no restart")

        # A stage with no live settings says its changed section needs a restart.
        stop["rerank"]["lambda"] = 0.9
        self.write(stop)
        self.sighup("rerank", "ok")
        self.assertIn('config reload: section "rerank" changed: cascade-rerank applies it only '
                      'at restart', self.log("rerank"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
