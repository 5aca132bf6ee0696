"""cascade-ab's arithmetic on a small log whose expected numbers this test
computes itself, with numpy and the closed forms below, never from the
tool's output:

- counts per layer and arm (users, requests, impressions, clicks, likes), and
  the events that do not join (wrong item, unknown request id, other user);
- CTR = sum clicks / sum impressions; its delta-method variance over users;
  the difference versus control with a 95% interval and a two-sided p-value;
  clicks per user with the Welch-style standard error;
- SRM chi-square against the config's bucket ranges: df = 2 has the survival
  function exp(-x/2), df = 1 has erfc(sqrt(x/2)); a dropped arm is flagged;
- launched vs its reverse range, everyone else vs the holdout, canary vs stable;
- the same log read from Redis streams (XRANGE, a private redis-server)
  gives the same report as the TSV export; --from/--to cut by serve time;
- bad input: exit 1 and a readable line, nothing on stdout."""

import json
import math
import os
import random
import subprocess
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

Z = 1.959963984540054
T0 = 1_800_000_000_000  # serve times, Unix ms

CONFIG = {
    "orchestrator": {"stages": {"rank": {"endpoint": [
        {"track": "stable", "endpoint": "rank", "weight": 7},
        {"track": "canary", "endpoint": "127.0.0.1:7000", "weight": 3}]}}},
    "experiments": {
        "buckets": 100, "holdout": [[0, 9]],
        "layers": [
            {"name": "rerank", "salt": "ab-rerank",
             "experiments": [{"name": "mmr_live", "ranges": [[0, 39]],
                              "params": {"rerank.lambda": 0.5}}]},
            {"name": "rank", "salt": "ab-rank",
             "experiments": [{"name": "lr", "launched": True, "reverse": [[90, 99]],
                              "params": {"rank.model": "lr"}}]},
        ],
    }
}
# Shares the config gives (by hand): holdout 10%; rerank: mmr_live 0.9*0.40,
# baseline 0.9*0.60; rank: lr 0.9*0.90, lr:reverse 0.9*0.10.
SHARES = {"rerank": {"holdout": 0.1, "mmr_live": 0.36, "baseline": 0.54},
          "rank": {"holdout": 0.1, "lr": 0.81, "lr:reverse": 0.09}}


def make_log(seed, users=300, drop_baseline=0.0):
    """Users get arms with the config's shares (not by hash: the readout
    only reads the log). mmr_live users click more. Returns serves, events
    (as dicts of stream fields) and the per-user truth."""
    rnd = random.Random(seed)
    serves, events, truth = [], [], []
    rid = 0
    for u in range(users):
        user = "u%d" % u
        held = rnd.random() < 0.1
        rr = "holdout" if held else ("mmr_live" if rnd.random() < 0.4 else "baseline")
        rk = "holdout" if held else ("lr:reverse" if rnd.random() < 0.1 else "lr")
        if rr == "baseline" and rnd.random() < drop_baseline:
            continue
        track = "canary" if rnd.random() < 0.3 else "stable"
        p_click = 0.2 if rr == "mmr_live" else 0.1
        x = y = likes = reqs = 0
        for _ in range(rnd.randint(1, 4)):
            rid += 1
            items = [rnd.randint(1, 500) for _ in range(rnd.randint(1, 6))]
            items = list(dict.fromkeys(items))
            ts = T0 + rid * 10
            serves.append({
                "rid": "r%d" % rid, "user": user, "ts_ms": str(ts),
                "exp": "rerank=%s@%d;rank=%s@%d" % (rr, rnd.randint(0, 99), rk,
                                                     rnd.randint(0, 99)),
                "track": "rank=%s" % track, "deg": "0",
                "items": ",".join("%d:%d:r:0.5:0.25" % (it, pos)
                                  for pos, it in enumerate(items))})
            reqs += 1
            y += len(items)
            for it in items:
                if rnd.random() < p_click:
                    events.append({"user": user, "item": str(it), "type": "click",
                                   "rid": "r%d" % rid, "ts": str(ts // 1000)})
                    x += 1
                    if rnd.random() < 0.5:
                        events.append({"user": user, "item": str(it), "type": "like",
                                       "rid": "r%d" % rid, "ts": str(ts // 1000)})
                        likes += 1
            # Events that must not join: an item not served, an unknown
            # request id, another user's request id, no request id.
            events.append({"user": user, "item": "999999", "type": "click",
                           "rid": "r%d" % rid, "ts": "0"})
            events.append({"user": user, "item": str(items[0]), "type": "click",
                           "rid": "nope-%d" % rid, "ts": "0"})
            events.append({"user": "someone-else", "item": str(items[0]), "type": "click",
                           "rid": "r%d" % rid, "ts": "0"})
            events.append({"user": user, "item": str(items[0]), "type": "click",
                           "rid": "", "ts": "0"})
        truth.append({"user": user, "rerank": rr, "rank": rk, "track": track,
                      "held": held, "x": x, "y": y, "likes": likes, "reqs": reqs})
    return serves, events, truth


def write_tsv(path, rows, fields):
    with open(path, "w") as f:
        f.write("\t".join(fields) + "\n")
        for r in rows:
            f.write("\t".join(r.get(k, "") for k in fields) + "\n")


SERVE_FIELDS = ["rid", "user", "ts_ms", "exp", "track", "deg", "items"]
EVENT_FIELDS = ["user", "item", "type", "value", "ts", "rid"]


def arm_stats(truth, pred):
    x = np.array([t["x"] for t in truth if pred(t)], dtype=float)
    y = np.array([t["y"] for t in truth if pred(t)], dtype=float)
    n = len(x)
    ctr = x.sum() / y.sum()
    mx, my = x.mean(), y.mean()
    cov = np.cov(x, y, ddof=1)  # [[var x, cov], [cov, var y]]
    var_ctr = (cov[0, 0] / my ** 2 - 2 * mx * cov[0, 1] / my ** 3
               + mx ** 2 * cov[1, 1] / my ** 4) / n
    return {"n": n, "ctr": ctr, "var_ctr": var_ctr, "cpu": mx, "var_cpu": cov[0, 0] / n,
            "x": x.sum(), "y": y.sum()}


def expected_diff(c, t, key):
    d = t[key] - c[key]
    se = math.sqrt(c["var_" + key] + t["var_" + key])
    return {"diff": d, "ci_low": d - Z * se, "ci_high": d + Z * se,
            "p": math.erfc(abs(d / se) / math.sqrt(2)), "relative": d / c[key]}


class AbTest(unittest.TestCase):
    tmp = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-ab-")
        cls.config = os.path.join(cls.tmp.path, "cascade.json")
        with open(cls.config, "w") as f:
            json.dump(CONFIG, f)
        cls.serves, cls.events, cls.truth = make_log(11)
        cls.serves_tsv = os.path.join(cls.tmp.path, "serves.tsv")
        cls.events_tsv = os.path.join(cls.tmp.path, "events.tsv")
        write_tsv(cls.serves_tsv, cls.serves, SERVE_FIELDS)
        write_tsv(cls.events_tsv, cls.events, EVENT_FIELDS)

    @classmethod
    def tearDownClass(cls):
        if cls.tmp:
            cls.tmp.cleanup()

    def ab(self, *args, check=True):
        res = subprocess.run([tl.bin_path("cascade-ab")] + list(args), capture_output=True,
                             text=True, timeout=120)
        if check:
            self.assertEqual(res.returncode, 0, res.stderr)
        return res

    def report(self, *extra):
        res = self.ab("--serves", self.serves_tsv, "--events", self.events_tsv, "--config",
                      self.config, "--json", *extra)
        return json.loads(res.stdout)

    @staticmethod
    def layer(rep, name):
        return next(layer for layer in rep["layers"] if layer["layer"] == name)

    @staticmethod
    def arm(layer, name):
        return next(a for a in layer["arms"] if a["arm"] == name)

    def close(self, got, want, what):
        self.assertTrue(math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12),
                        "%s: got %r, want %r" % (what, got, want))

    def test_counts_and_joins(self):
        rep = self.report()
        self.assertEqual(rep["serves"], len(self.serves))
        joined = sum(t["x"] + t["likes"] for t in self.truth)
        self.assertEqual(rep["events_joined"], joined)
        # Four unjoinable events per request; the event without rid is not read.
        self.assertEqual(rep["events_unjoined"], 3 * len(self.serves))
        rerank = self.layer(rep, "rerank")
        for arm in ("baseline", "mmr_live", "holdout"):
            mine = [t for t in self.truth if t["rerank"] == arm]
            a = self.arm(rerank, arm)
            self.assertEqual(a["users"], len(mine), arm)
            self.assertEqual(a["requests"], sum(t["reqs"] for t in mine), arm)
            self.assertEqual(a["impressions"], sum(t["y"] for t in mine), arm)
            self.assertEqual(a["clicks"], sum(t["x"] for t in mine), arm)
            self.assertEqual(a["behaviours"]["like"], sum(t["likes"] for t in mine), arm)

    def test_ctr_delta_method_and_clicks_per_user(self):
        rerank = self.layer(self.report(), "rerank")
        c = arm_stats(self.truth, lambda t: t["rerank"] == "baseline")
        t = arm_stats(self.truth, lambda t: t["rerank"] == "mmr_live")
        a = self.arm(rerank, "mmr_live")
        self.assertEqual(a["control"], "baseline")
        self.close(a["ctr"], t["ctr"], "ctr")
        self.close(a["ctr_se"], math.sqrt(t["var_ctr"]), "ctr se")
        for key, got in (("ctr", a["ctr_vs_control"]), ("cpu", a["clicks_per_user_vs_control"])):
            want = expected_diff(c, t, key)
            for k, v in want.items():
                self.close(got[k], v, "%s %s" % (key, k))
        # The simulated effect (CTR 0.2 vs 0.1) is found, with the right sign.
        self.assertGreater(a["ctr_vs_control"]["ci_low"], 0)
        self.assertLess(a["ctr_vs_control"]["p"], 0.001)
        self.assertNotIn("control", self.arm(rerank, "baseline"))

    def test_srm(self):
        rep = self.report()
        for name in ("rerank", "rank"):
            layer = self.layer(rep, name)
            n = sum(a["users"] for a in layer["arms"])
            chi2 = 0.0
            for arm, share in SHARES[name].items():
                got = self.arm(layer, arm)
                self.close(got["expected_share"], share, "%s %s share" % (name, arm))
                obs = sum(1 for t in self.truth if t[name] == arm)
                chi2 += (obs - n * share) ** 2 / (n * share)
            self.close(layer["srm"]["chi2"], chi2, name + " chi2")
            self.assertEqual(layer["srm"]["df"], 2)
            self.close(layer["srm"]["p"], math.exp(-chi2 / 2), name + " p")  # df 2
            self.assertFalse(layer["srm"]["flagged"])
        hold = self.layer(rep, "holdout_vs_rest")
        n = len(self.truth)
        held = sum(1 for t in self.truth if t["held"])
        chi2 = (held - 0.1 * n) ** 2 / (0.1 * n) + (n - held - 0.9 * n) ** 2 / (0.9 * n)
        self.close(hold["srm"]["chi2"], chi2, "holdout chi2")
        self.close(hold["srm"]["p"], math.erfc(math.sqrt(chi2 / 2)), "holdout p")  # df 1

        # Drop 70% of the baseline users: the mismatch is flagged.
        serves, events, _ = make_log(11, drop_baseline=0.7)
        s_tsv, e_tsv = (os.path.join(self.tmp.path, n) for n in ("s2.tsv", "e2.tsv"))
        write_tsv(s_tsv, serves, SERVE_FIELDS)
        write_tsv(e_tsv, events, EVENT_FIELDS)
        res = self.ab("--serves", s_tsv, "--events", e_tsv, "--config", self.config)
        self.assertRegex(res.stdout, r"layer rerank: SRM chi2=\S+ df=2 p=\S+  \*\* SAMPLE RATIO "
                                     r"MISMATCH")
        self.assertRegex(res.stdout, r"layer rank: SRM chi2=\S+ df=2 p=\S+ ok")

    def test_controls(self):
        rep = self.report()
        rank = self.layer(rep, "rank")
        lr = self.arm(rank, "lr")
        self.assertEqual(lr["control"], "lr:reverse")
        c = arm_stats(self.truth, lambda t: t["rank"] == "lr:reverse")
        t = arm_stats(self.truth, lambda t: t["rank"] == "lr")
        self.close(lr["ctr_vs_control"]["diff"], t["ctr"] - c["ctr"], "launched vs reverse")
        rest = self.arm(self.layer(rep, "holdout_vs_rest"), "everyone_else")
        self.assertEqual(rest["control"], "holdout")
        c = arm_stats(self.truth, lambda t: t["held"])
        t = arm_stats(self.truth, lambda t: not t["held"])
        self.close(rest["ctr_vs_control"]["diff"], t["ctr"] - c["ctr"], "rest vs holdout")
        canary = self.arm(self.layer(rep, "track:rank"), "canary")
        self.assertEqual(canary["control"], "stable")
        self.assertEqual(canary["users"], sum(1 for t in self.truth if t["track"] == "canary"))
        # The canary's SRM: shares 0.7 / 0.3 from the endpoint group's weights (df 1).
        track = self.layer(rep, "track:rank")
        n = len(self.truth)
        can = canary["users"]
        chi2 = (can - 0.3 * n) ** 2 / (0.3 * n) + (n - can - 0.7 * n) ** 2 / (0.7 * n)
        self.close(track["srm"]["chi2"], chi2, "track chi2")
        self.close(track["srm"]["p"], math.erfc(math.sqrt(chi2 / 2)), "track p")

    def test_time_range(self):
        # Serves are 10 ms apart from T0 + 10: [T0+10, T0+500] holds the first 50.
        rep = self.report("--from", str(T0 + 10), "--to", str(T0 + 500))
        self.assertEqual(rep["serves"], 50)

    def test_redis_streams(self):
        base = tl.free_port_base()
        port = base + 9
        data = os.path.join(self.tmp.path, "redis")
        os.makedirs(data)
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while tl.run(["redis-cli", "-p", str(port), "ping"], check=False,
                         quiet=True).stdout.strip() != "PONG":
                self.assertLess(time.monotonic(), deadline, "redis-server did not start")
                time.sleep(0.05)  # poll interval, not a synchronisation
            cmds = []
            for s in self.serves:
                args = ["XADD", "abt:serves", "%s-0" % s["ts_ms"]]
                for k in SERVE_FIELDS:
                    args += [k, s[k]]
                cmds.append(args)
            for i, e in enumerate(self.events):
                args = ["XADD", "abt:events", "%d-%d" % (T0 + 100000, i + 1)]
                for k in EVENT_FIELDS:
                    if e.get(k):
                        args += [k, e[k]]
                cmds.append(args)
            script = "\n".join(" ".join('"%s"' % a for a in c) for c in cmds) + "\n"
            res = subprocess.run(["redis-cli", "-p", str(port)], input=script,
                                 capture_output=True, text=True, timeout=120)
            self.assertNotIn("ERR", res.stdout)
            got = json.loads(self.ab("--redis", "127.0.0.1:%d" % port, "--namespace", "abt",
                                     "--config", self.config, "--json").stdout)
            want = self.report()
            self.assertEqual(got["serves"], want["serves"])
            self.assertEqual(got["events_joined"], want["events_joined"])
            for name in ("rerank", "rank", "holdout_vs_rest"):
                self.assertEqual(self.layer(got, name), self.layer(want, name))
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def test_bad_input(self):
        bad = os.path.join(self.tmp.path, "bad.tsv")
        write_tsv(bad, [{"rid": "r1", "user": "u", "ts_ms": "1", "exp": "rerank-baseline",
                         "items": "1:0:r:1:1"}], SERVE_FIELDS)
        res = self.ab("--serves", bad, "--events", self.events_tsv, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout, "")
        self.assertIn('bad.tsv:2: exp: expected layer=experiment@bucket, got "rerank-baseline"',
                      res.stderr)
        res = self.ab("--serves", self.serves_tsv, check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("give either --redis or both --serves and --events", res.stderr)
        res = self.ab("--serves", "/nonexistent", "--events", self.events_tsv, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("/nonexistent: No such file or directory", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
