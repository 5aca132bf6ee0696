#!/usr/bin/python3
"""Experiments on the closed-loop simulator (cascade-sim), read with cascade-ab.

Starts a local stack (scripts/stack.sh, free ports, its own redis-server),
builds a synthetic world with the learned models, then runs one scenario:

  aa      A/A: --aa-layers extra layers (salts aa-<seed>-<k>, 50/50, no params)
          over --seeds seeds (each seed: new salts by SIGHUP reload, a new user
          sample and new clicks); counts CTR and clicks/user p < 0.05.
  effect  layer rerank: experiment low_lambda (rerank.method mmr, rerank.lambda
          = --lambda) on half the buckets against baseline (the shipped
          config/cascade.json re-rank).
  srm     as effect, and the simulator drops --drop-share of low_lambda's users.
  canary  rank endpoint group stable/canary 1:1; the canary is a second
          cascade-rank with a deliberately worse model (--canary-kind: the same
          MMoE with its fusion reversed, or an MMoE of another world).

  /usr/bin/python3 scripts/bench/sim_experiments.py SCENARIO [flags]

Prints the cascade-sim table, the cascade-ab rows that matter and a one-line
verdict. Figures: docs/experiments.md ("Simulator").
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import cascade_testlib as tl  # noqa: E402

TIMEOUT_S = 60


def experiments_config(scenario, a):
    """The experiments section for a scenario."""
    exp = {"buckets": 1000, "holdout": [[0, 9]], "layers": [
        {"name": "recall", "salt": "recall-sim", "experiments": []},
        {"name": "prerank", "salt": "prerank-sim", "experiments": []},
        {"name": "rank", "salt": "rank-sim", "experiments": []},
        {"name": "rerank", "salt": "rerank-sim-%d" % a.salt_seed, "experiments": []}]}
    if scenario in ("effect", "srm"):
        exp["layers"][3]["experiments"] = [
            {"name": "low_lambda", "ranges": [[0, 499]],
             "params": {"rerank.method": "mmr", "rerank.lambda": a.lambda_}}]
    if scenario == "aa":
        for k in range(a.aa_layers):
            exp["layers"].append({"name": "aa%02d" % k, "salt": "aa-%d-%d" % (a.salt_seed, k),
                                  "experiments": [{"name": "a2", "ranges": [[0, 499]]}]})
    return exp


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (port + 1000),
                                timeout=TIMEOUT_S) as r:
        return r.read().decode()


class SimStack:
    """A stack with a built world, optionally a canary rank process."""

    def __init__(self, work, scenario, a):
        self.work, self.a, self.canary = work, a, None
        self.config = os.path.join(work, "cascade.json")
        tl.write_config(self.config, {"experiments": experiments_config(scenario, a)})
        sets = []
        if scenario == "canary":
            self.canary_port = tl.free_port_base()
            with open(self.config) as f:
                doc = json.load(f)
            doc["orchestrator"]["stages"]["rank"]["endpoint"] = [
                {"track": "stable", "endpoint": "rank", "weight": 1},
                {"track": "canary", "endpoint": "rank_canary", "weight": 1}]
            with open(self.config, "w") as f:
                json.dump(doc, f, indent=2)
            sets = ["orchestrator.endpoints.rank_canary=127.0.0.1:%d" % self.canary_port]
        self.stack = tl.Stack(os.path.join(work, "stack"), config=self.config, sets=sets)

    def world_flags(self):
        a = self.a
        return ["--users", str(a.world_users), "--items", str(a.items), "--seed",
                str(a.world_seed), "--end-ts", str(a.end_ts)]

    def start(self):
        self.stack.start()
        a = self.a
        data = os.path.join(self.work, "world")
        tl.run([tl.bin_path("cascade-datagen"), "--out", data, "--events", str(a.events),
                "--quiet"] + self.world_flags())
        tl.run([tl.bin_path("cascade-build"), "all", "--data", data, "--redis",
                "127.0.0.1:%d" % self.stack.redis_port, "--model-dir", self.stack.model_dir,
                "--quiet"])
        for job in a.train:
            tl.run([tl.bin_path("cascade-build"), job, "--data", data, "--model-dir",
                    self.stack.model_dir, "--quiet", "--force"])

    def start_canary(self):
        """A second cascade-rank with a deliberately worse model:
        --canary-kind inverted: the stack's own MMoE with the fusion reversed
        (weights.click -1, the other tasks 0): its best items go last;
        --canary-kind other-world: an MMoE trained on another world (same
        sizes, seed --canary-seed, --canary-events impressions)."""
        a = self.a
        models, sets = self.stack.model_dir, []
        if a.canary_kind == "other-world":
            other = os.path.join(self.work, "other-world")
            models = os.path.join(self.work, "canary-models")
            tl.run([tl.bin_path("cascade-datagen"), "--out", other, "--events",
                    str(a.canary_events), "--quiet", "--users", str(a.world_users), "--items",
                    str(a.items), "--seed", str(a.canary_seed), "--end-ts", str(a.end_ts)])
            tl.run([tl.bin_path("cascade-build"), "train-mmoe", "--data", other, "--model-dir",
                    models, "--quiet", "--force"])
        else:
            sets = ["--set", "rank.fusion.weights.click=-1"]
            for task in ("like", "collect", "share", "watch_time", "complete"):
                sets += ["--set", "rank.fusion.weights.%s=0" % task]
        self.canary_log = open(os.path.join(self.work, "rank-canary.log"), "w")
        self.canary = subprocess.Popen(
            [tl.bin_path("cascade-rank"), "--config", self.config, "--redis",
             "127.0.0.1:%d" % self.stack.redis_port, "--model-dir", models,
             "--listen", "127.0.0.1:%d" % self.canary_port] + sets,
            stdout=self.canary_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT_S
        while True:  # the canary serves once its metrics endpoint answers
            try:
                metrics(self.canary_port)
                return
            except OSError:
                if time.monotonic() > deadline or self.canary.poll() is not None:
                    raise RuntimeError("canary rank did not start")
                time.sleep(0.05)

    def reloads(self):
        m = re.search(r'^cascade_config_reloads_total\{result="ok"\} (\S+)$',
                      metrics(self.stack.ports["orchestrator"]), re.M)
        return float(m.group(1)) if m else 0.0

    def reload_experiments(self, exp):
        """Write a new experiments section and SIGHUP the orchestrator; wait
        until its ok-reload counter moves (docs/experiments.md, hot reload)."""
        with open(self.config) as f:
            doc = json.load(f)
        doc["experiments"] = exp
        with open(self.config, "w") as f:
            json.dump(doc, f, indent=2)
        before = self.reloads()
        os.kill(self.stack.pid("orchestrator"), signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT_S
        while self.reloads() <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("orchestrator: no reload\n" +
                                   self.stack.log_tail("orchestrator", 20))
            time.sleep(0.05)  # polling interval of the metric

    def stop(self):
        if self.canary:
            self.canary.terminate()
            self.canary.wait(timeout=30)
            self.canary_log.close()
        self.stack.stop()

    def sim(self, seed, extra=()):
        a = self.a
        cmd = [tl.bin_path("cascade-sim"), "--target", self.stack.addr(), "--config",
               self.config, "--sim-users", str(a.sim_users), "--sim-days", str(a.sim_days),
               "--requests-per-day", str(a.rpd), "--count", str(a.count), "--sim-seed",
               str(seed), "--quiet"] + self.world_flags() + list(extra)
        return tl.run(cmd, timeout=3600).stdout

    def readout(self, from_ms):
        res = tl.run([tl.bin_path("cascade-ab"), "--redis",
                      "127.0.0.1:%d" % self.stack.redis_port, "--from", str(from_ms),
                      "--config", self.config, "--json"], quiet=True)
        return json.loads(res.stdout)


def layer(report, name):
    for la in report["layers"]:
        if la["layer"] == name:
            return la
    raise KeyError(name)


def arm(la, name):
    for x in la["arms"]:
        if x["arm"] == name:
            return x
    raise KeyError(name)


def fmt_cmp(c):
    if not c or c.get("diff") is None:
        return "n/a"
    return "diff %+.4f (%+.1f%%), 95%% CI [%+.4f, %+.4f], p %.3g" % (
        c["diff"], 100 * c["relative"], c["ci_low"], c["ci_high"], c["p"])


def run_scenario(scenario, a):
    tmp = tl.TempDir("cascade-sim-")
    s = SimStack(tmp.path, scenario, a)
    try:
        s.start()
        if scenario == "canary":
            s.start_canary()
        if scenario == "aa":
            hits = {"ctr": 0, "clicks_per_user": 0}
            tests = 0
            for seed in range(1, a.seeds + 1):
                if seed > 1:  # new salts: every seed is a new random split
                    a.salt_seed = seed
                    s.reload_experiments(experiments_config("aa", a))
                t0 = int(time.time() * 1000)
                print(s.sim(seed).splitlines()[0])
                rep = s.readout(t0)
                for k in range(a.aa_layers):
                    x = arm(layer(rep, "aa%02d" % k), "a2")
                    tests += 1
                    for m in hits:
                        c = x["%s_vs_control" % m]
                        hits[m] += c is not None and c["p"] is not None and c["p"] < 0.05
                srm = sum(1 for k in range(a.aa_layers)
                          if layer(rep, "aa%02d" % k)["srm"].get("flagged"))
                print("seed %d: %d A/A layers, SRM flagged in %d" % (seed, a.aa_layers, srm))
            print("A/A: %d tests; p < 0.05: CTR %d (%.1f%%), clicks/user %d (%.1f%%)" % (
                tests, hits["ctr"], 100.0 * hits["ctr"] / tests, hits["clicks_per_user"],
                100.0 * hits["clicks_per_user"] / tests))
            return
        t0 = int(time.time() * 1000)
        extra = ["--drop", "rerank=low_lambda:%g" % a.drop_share] if scenario == "srm" else []
        print(s.sim(a.salt_seed, extra))
        rep = s.readout(t0)
        name = "track:rank" if scenario == "canary" else "rerank"
        treat = "canary" if scenario == "canary" else "low_lambda"
        la = layer(rep, name)
        for x in la["arms"]:
            print("%-12s users %5d requests %6d impressions %7d clicks %6d CTR %.4f "
                  "share %.3f (expected %s)" % (
                      x["arm"], x["users"], x["requests"], x["impressions"], x["clicks"],
                      x["ctr"] or 0, x["observed_share"] or 0, x["expected_share"]))
        x = arm(la, treat)
        print("%s %s vs %s: CTR %s" % (name, treat, x["control"], fmt_cmp(x["ctr_vs_control"])))
        print("%s %s vs %s: clicks/user %s" % (name, treat, x["control"],
                                               fmt_cmp(x["clicks_per_user_vs_control"])))
        print("%s SRM: %s" % (name, json.dumps(la["srm"])))
    finally:
        s.stop()
        tmp.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=["aa", "effect", "srm", "canary"])
    p.add_argument("--world-users", type=int, default=2000)
    p.add_argument("--items", type=int, default=500)
    p.add_argument("--events", type=int, default=40000)
    p.add_argument("--world-seed", type=int, default=11)
    p.add_argument("--end-ts", type=int, default=1796601600)  # 2026-12-07 00:00 UTC
    p.add_argument("--sim-users", type=int, default=400)
    p.add_argument("--sim-days", type=int, default=2)
    p.add_argument("--rpd", type=int, default=2)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--aa-layers", type=int, default=20)
    p.add_argument("--salt-seed", type=int, default=1)
    p.add_argument("--lambda", dest="lambda_", type=float, default=0.0)
    p.add_argument("--drop-share", type=float, default=0.3)
    p.add_argument("--canary-seed", type=int, default=99)
    p.add_argument("--canary-events", type=int, default=40000)
    p.add_argument("--canary-kind", choices=["inverted", "other-world"], default="inverted")
    p.add_argument("--train", default="train-mmoe",
                   help="comma-separated cascade-build train jobs for the stack's models")
    a = p.parse_args()
    a.train = [j for j in a.train.split(",") if j]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    t = time.monotonic()
    run_scenario(a.scenario, a)
    print("wall %.0fs" % (time.monotonic() - t))


if __name__ == "__main__":
    main()
