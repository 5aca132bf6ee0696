"""End-to-end test of every recall channel and of what the orchestrator does
with them: a private redis-server and all six services (scripts/stack.sh), a
generated world built with `cascade-build all`, and an independent python
gRPC client.

- every channel of config/cascade.json returns candidates through the real
  Recall service (normal channels for users with a history, cold-start
  channels for users without one, `cache` after a Recommend);
- the cold-start mix is used for users without a history and named in the
  trace;
- the merge honours channel weights and quotas: a second orchestrator with
  pre-rank, rank, re-rank, exploration and the cache off returns the merged
  order itself, which the test recomputes from per-channel Recall answers
  (recall_score = sum of weight x score / channel max, quota, dedupe);
- Feedback dislike / hide_author / follow change what comes back (a cloned
  twin user without the feedback is the control);
- cache recall returns previously ranked-but-unshown items.
Everything is torn down even on failure."""

import collections
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
NS = "cascade"

# The merge-check orchestrator: distinct weights and quotas below what the
# channels return, so both show in the result.
MERGE_CHANNELS = [
    ("itemcf", 3.0, 60), ("swing", 2.5, 30), ("usercf", 1.7, 40),
    ("follow_author", 1.3, 20), ("interacted_author", 1.1, 30),
    ("similar_author", 0.9, 40), ("cache", 0.8, 20), ("hot", 0.6, 25),
    ("geo", 0.45, 20), ("city", 0.35, 30), ("new", 0.25, 15),
]


def f32(x):
    """x rounded to a 32-bit float, as the C merge accumulates."""
    return struct.unpack("f", struct.pack("f", x))[0]


class ChannelsTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-ch-"
    # No experiments: every user gets the same parameters, so a cloned twin
    # user is answered exactly like the original.
    CONFIG = {"experiments": None}
    merge_orch = None

    @classmethod
    def set_up_class(cls):
        with open(cls.config) as f:
            cls.cfg = json.load(f)
        cls._read_world()
        cls._start_merge_orchestrator()

    @classmethod
    def tear_down_class(cls):
        if cls.merge_orch is not None:
            cls.merge_orch.send_signal(signal.SIGTERM)
            try:
                cls.merge_orch.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                cls.merge_orch.kill()
                cls.merge_orch.wait()
            cls.merge_orch = None

    @classmethod
    def _redis_batch(cls, commands):
        """Run one redis-cli command per line; returns the reply lines."""
        res = subprocess.run(["redis-cli", "-p", str(cls.stack.redis_port)],
                             input="\n".join(commands) + "\n", capture_output=True,
                             text=True, timeout=60, check=True)
        return res.stdout.split("\n")[:len(commands)]

    @classmethod
    def _read_world(cls):
        users = tl.read_tsv_column(os.path.join(cls.world, "users.tsv"))
        items = os.path.join(cls.world, "items.tsv")
        cls.author_of = dict(zip((int(i) for i in tl.read_tsv_column(items, 0)),
                                 (int(a) for a in tl.read_tsv_column(items, 1))))
        lastn = [int(x) for x in cls._redis_batch(
            ["LLEN %s:user:%s:lastn" % (NS, u) for u in users])]
        exists = [x == "1" for x in cls._redis_batch(["EXISTS %s:user:%s" % (NS, u)
                                                        for u in users])]
        cls.history_users = [u for u, n in zip(users, lastn) if n >= 8]
        cls.cold_users = [u for u, n, e in zip(users, lastn, exists) if n == 0 and e]
        if len(cls.history_users) < 20 or len(cls.cold_users) < 3:
            raise RuntimeError("the generated world has too few users with (%d) and without "
                               "(%d) a history" % (len(cls.history_users), len(cls.cold_users)))
        # Each test takes its own users so their exposures and caches never mix.
        cls.spare = list(cls.history_users)

    @classmethod
    def take_user(cls):
        return cls.spare.pop()

    @classmethod
    def _start_merge_orchestrator(cls):
        """An orchestrator whose answer is the merge itself: later stages,
        exploration, the cache writes and cold start are off."""
        cfg = json.loads(json.dumps(cls.cfg))
        orch = cfg["orchestrator"]
        orch["channels"] = [{"name": n, "weight": w, "quota": q, "timeout_ms": 5000}
                            for n, w, q in MERGE_CHANNELS]
        orch["cold_start"] = {"channels": []}
        orch["exploration"] = {"new_share": 0}
        orch["cache"] = {"enabled": False}
        for stage in ("prerank", "rank", "rerank"):
            orch["stages"][stage]["enabled"] = False
        path = os.path.join(cls.tmp.path, "merge-orchestrator.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        port = cls.stack.base + 7  # unused by stack.sh without split channels
        cls.merge_addr = "127.0.0.1:%d" % port
        log = open(os.path.join(cls.tmp.path, "merge-orchestrator.log"), "w")
        cmd = [tl.bin_path("cascade-orchestrator"), "--config", path,
               "--redis", "127.0.0.1:%d" % cls.stack.redis_port, "--listen", cls.merge_addr,
               "--set", "orchestrator.endpoints.recall=" + cls.stack.addr("recall"),
               "--set", "orchestrator.endpoints.filter=" + cls.stack.addr("filter")]
        tl.log("+ " + " ".join(cmd))
        cls.merge_orch = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            res = tl.run([tl.bin_path("cascade-cli"), "health", "--addr", cls.merge_addr,
                          "--timeout-ms", "1000"], check=False, quiet=True)
            if res.returncode == 0:
                return
            if cls.merge_orch.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("merge orchestrator did not come up (exit %s)"
                                   % cls.merge_orch.poll())
            time.sleep(0.1)

    # ------------------------------------------------------------ helpers

    def recall(self, user_id, channel, quota=100):
        stub = self.channel(self.stack.addr("recall")).unary_unary(
            "/cascade.v1.Recall/Recall",
            request_serializer=self.pb.recall.RecallRequest.SerializeToString,
            response_deserializer=self.pb.recall.RecallResponse.FromString)
        req = self.pb.recall.RecallRequest(user=self.pb.common.UserContext(user_id=user_id),
                                           channels=[channel], quota=quota)
        return stub(req, timeout=TIMEOUT_S)

    def recommend(self, user_id, count=10, debug=False, addr=None):
        stub = self.pb.recommender_grpc.RecommenderStub(
            self.channel(addr or self.stack.addr("orchestrator")))
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user_id), count=count, debug=debug)
        return stub.Recommend(req, timeout=TIMEOUT_S)

    def feedback(self, user_id, item_id, type_name):
        stub = self.pb.recommender_grpc.RecommenderStub(
            self.channel(self.stack.addr("orchestrator")))
        ev = self.pb.common.Event(user_id=user_id, item_id=item_id,
                                  type=self.pb.common.EventType.Value(type_name))
        resp = stub.Feedback(self.pb.recommender.FeedbackRequest(events=[ev]),
                             timeout=TIMEOUT_S)
        self.assertEqual(resp.accepted, 1)

    def filter(self, user_id, item_ids):
        stub = self.channel(self.stack.addr("filter")).unary_unary(
            "/cascade.v1.Filter/Filter",
            request_serializer=self.pb.filter.FilterRequest.SerializeToString,
            response_deserializer=self.pb.filter.FilterResponse.FromString)
        req = self.pb.filter.FilterRequest(
            user=self.pb.common.UserContext(user_id=user_id),
            candidates=[self.pb.common.Candidate(item_id=i) for i in item_ids])
        resp = stub(req, timeout=TIMEOUT_S)
        return [c.item_id for c in resp.candidates], {d.reason: d.count for d in resp.dropped}

    def filter_metrics(self):
        """cascade_filter_dropped_total by reason, scraped from the filter."""
        port = self.stack.ports["filter"] + tl.METRICS_OFFSET
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'cascade_filter_dropped_total\{reason="(\w+)"\} (\S+)$', line)
            if m:
                out[m.group(1)] = float(m.group(2))
        self.assertEqual(sorted(out), sorted(["exposed", "consumed", "blocked_item",
                                              "blocked_author", "duplicate"]), text[-2000:])
        return out

    def trace(self, resp):
        return {t.stage: t for t in resp.trace}

    @staticmethod
    def trace_fields(t):
        """The key=value pairs of a merge/<channel> trace message."""
        return dict(kv.split("=", 1) for kv in t.message.split())

    def channel_names(self, section):
        orch = self.cfg["orchestrator"]
        chans = orch["cold_start"]["channels"] if section == "cold" else orch["channels"]
        return [c["name"] for c in chans if c.get("enabled", True)]

    def assert_channel_answer(self, resp, channel, quota):
        ids = [c.item_id for c in resp.candidates]
        self.assertLessEqual(len(ids), quota, channel)
        self.assertEqual(len(ids), len(set(ids)), "%s repeats items" % channel)
        for c in resp.candidates:
            self.assertIn(channel, [h.channel for h in c.channels], (channel, c))
        self.assertEqual([(r.channel, r.count) for r in resp.channels], [(channel, len(ids))])

    def clone_user(self, src, dst):
        moves = self.stack.clone_user(src, dst, NS)
        self.assertGreaterEqual(len(moves), 3, "too few keys for %s: %s" % (src, moves))

    # ------------------------------------------------------------ tests

    def test_01_every_channel_returns_candidates(self):
        quota = 50
        # Users with a history for the normal channels (follow_author needs
        # one who follows somebody; cache one who was recommended before).
        for name in self.channel_names("normal"):
            if name == "cache":
                continue
            pool = self.history_users
            if name == "follow_author":
                pool = [u for u in pool
                        if int(self.stack.redis_cli("SCARD", "%s:user:%s:follows" % (NS, u)))]
            got = None
            for user in pool[:40]:
                resp = self.recall(user, name, quota)
                if resp.candidates:
                    got = (user, resp)
                    break
            self.assertIsNotNone(got, "channel %s returned nothing for any user with a history"
                                 % name)
            self.assert_channel_answer(got[1], name, quota)
            tl.log("channel %-18s user %-6s %d candidates" % (name, got[0], len(got[1].candidates)))
        # Users without a history for the cold-start mix.
        for name in self.channel_names("cold"):
            got = None
            for user in self.cold_users:
                resp = self.recall(user, name, quota)
                if resp.candidates:
                    got = resp
                    break
            self.assertIsNotNone(got, "cold-start channel %s returned nothing for any user "
                                 "without a history" % name)
            self.assert_channel_answer(got, name, quota)
            tl.log("cold-start channel %-10s %d candidates" % (name, len(got.candidates)))
        # The cache channel, once a Recommend filled the user's cache.
        user = self.take_user()
        self.assertEqual(len(self.recall(user, "cache").candidates), 0)
        self.recommend(user, count=10)
        self.assert_channel_answer(self.recall(user, "cache", quota), "cache", quota)
        self.assertGreater(len(self.recall(user, "cache", quota).candidates), 0)
        # An unknown channel is refused.
        with self.assertRaises(grpc.RpcError) as cm:
            self.recall(user, "no_such_channel")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("unknown channel", cm.exception.details())

    def test_02_cold_start_mix(self):
        cold = self.cold_users[0]
        resp = self.recommend(cold, count=10, debug=True)
        self.assertEqual(len(resp.items), 10)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        trace = self.trace(resp)
        self.assertTrue(trace["mix"].message.startswith("cold_start"), trace["mix"].message)
        called = sorted(s[len("recall/"):] for s in trace if s.startswith("recall/"))
        self.assertEqual(called, sorted(self.channel_names("cold")))
        for name in called:
            self.assertEqual(self.trace_fields(trace["merge/" + name])["mix"], "cold_start")

        warm = self.take_user()
        resp = self.recommend(warm, count=10, debug=True)
        trace = self.trace(resp)
        self.assertTrue(trace["mix"].message.startswith("normal"), trace["mix"].message)
        called = sorted(s[len("recall/"):] for s in trace if s.startswith("recall/"))
        self.assertEqual(called, sorted(self.channel_names("normal")))
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))

    def expected_merge(self, user):
        """Recompute the merge from per-channel Recall answers: per channel the
        first `quota` candidates (a repeat keeps its first entry), normalised
        by the channel's best score, weighted and summed in 32-bit floats."""
        score = collections.defaultdict(float)
        provenance = collections.defaultdict(set)
        answers = {}
        for name, weight, quota in MERGE_CHANNELS:
            resp = self.recall(user, name, quota)
            kept, seen = [], set()
            for c in resp.candidates[:quota]:
                if c.item_id in seen:
                    continue
                seen.add(c.item_id)
                hit = [h.score for h in c.channels if h.channel == name][0]
                kept.append((c.item_id, hit))
            answers[name] = kept
            best = max([s for _, s in kept] + [0.0])
            for item, s in kept:
                norm = (max(s, 0.0) / best) if best > 0 else 1.0
                score[item] = f32(score[item] + f32(weight * norm))
                provenance[item].add(name)
        return score, provenance, answers

    def test_03_merge_honours_weights_and_quotas(self):
        user = self.take_user()
        score, provenance, answers = self.expected_merge(user)
        consumed = set(int(x) for x in self.stack.redis_cli(
            "SMEMBERS", "%s:user:%s:consumed" % (NS, user)).split())
        expected = sorted((i for i in score if i not in consumed),
                          key=lambda i: (-score[i], i))
        count = 50
        resp = self.recommend(user, count=count, debug=True, addr=self.merge_addr)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        got = [it.item_id for it in resp.items]
        self.assertEqual(len(got), min(count, len(expected)))
        # Every item carries its merged score and every channel that found it.
        for it in resp.items:
            self.assertIn(it.item_id, score, it.item_id)
            self.assertAlmostEqual(it.score, score[it.item_id], delta=1e-5 * score[it.item_id])
            self.assertEqual(set(it.channels), provenance[it.item_id], it.item_id)
        scores = [it.score for it in resp.items]
        self.assertEqual(scores, sorted(scores, reverse=True))
        # The answer is the top of the recomputed merge (up to float ties at the cut).
        cut = resp.items[-1].score
        for item in expected[:count]:
            if score[item] > cut + 1e-5:
                self.assertIn(item, got,
                              "item %d (merged score %.6f) missing" % (item, score[item]))
        # Per-channel contribution in the trace: returned within the quota,
        # kept by the merge, present in the final list.
        trace = self.trace(resp)
        merged_channels = collections.Counter(n for i in score for n in provenance[i])
        final_channels = collections.Counter(n for it in resp.items for n in it.channels)
        tl.log("merge check for %s: %d merged items, %d consumed, %d returned"
               % (user, len(score), len(consumed), len(got)))
        for name, weight, quota in MERGE_CHANNELS:
            fields = self.trace_fields(trace["merge/" + name])
            tl.log("  " + trace["merge/" + name].message)
            self.assertEqual(float(fields["weight"]), weight, name)
            self.assertEqual(int(fields["quota"]), quota, name)
            self.assertEqual(int(fields["returned"]), len(answers[name]), name)
            self.assertLessEqual(int(fields["returned"]), quota, name)
            self.assertEqual(int(fields["kept"]), merged_channels[name], name)
            self.assertEqual(int(fields["final"]), final_channels[name], name)
        # Quotas bind: the channels with more candidates than their quota
        # were cut to it.
        self.assertEqual(len(answers["hot"]), 25)
        self.assertEqual(len(answers["itemcf"]), min(60, len(self.recall(user, "itemcf", 500)
                                                             .candidates)))

    def test_04_feedback_changes_what_comes_back(self):
        user = self.take_user()
        twins = [user + "-twin-a", user + "-twin-b"]
        for t in twins:
            self.clone_user(user, t)
        # Control: two twins without feedback get the same answer (the
        # pipeline is deterministic for identical data), including the items
        # the feedback below will exclude.
        base = [(it.item_id, it.attrs.author_id) for it in self.recommend(twins[0], 30).items]
        self.assertEqual(base, [(it.item_id, it.attrs.author_id)
                                for it in self.recommend(twins[1], 30).items])
        by_author = collections.Counter(a for _, a in base if a)
        author, _ = by_author.most_common(1)[0]
        hidden_via = [i for i, a in base if a == author][0]
        disliked = [i for i, a in base if a != author][0]
        tl.log("feedback check for %s: dislike item %d, hide author %d (%d of the twin's 30 "
               "items) via item %d" % (user, disliked, author, by_author[author], hidden_via))
        self.feedback(user, disliked, "EVENT_TYPE_DISLIKE")
        self.feedback(user, hidden_via, "EVENT_TYPE_HIDE_AUTHOR")
        self.assertEqual(self.stack.redis_cli("SISMEMBER", "%s:user:%s:blocked_items"
                                              % (NS, user), str(disliked)), "1")
        self.assertEqual(self.stack.redis_cli("SISMEMBER", "%s:user:%s:blocked_authors"
                                              % (NS, user), str(author)), "1")
        got = [(it.item_id, it.attrs.author_id) for it in self.recommend(user, 30).items]
        self.assertEqual(len(got), 30)
        self.assertNotIn(disliked, [i for i, _ in got])
        self.assertNotIn(author, [a for _, a in got], "hidden author %d came back" % author)
        # The rest of the answer is still the twin's, minus what was excluded.
        kept = [i for i, a in base if i != disliked and a != author]
        self.assertTrue(set(kept) & set(i for i, _ in got))
        # The filter drops them for this user only, with their reasons.
        items_by_author = [i for i, a in self.author_of.items() if a == author]
        survivors, dropped = self.filter(user, [disliked] + items_by_author)
        self.assertEqual(survivors, [])
        self.assertEqual(dropped["blocked_item"], 1)
        self.assertGreaterEqual(dropped["blocked_author"], 1)
        self.assertEqual(sum(dropped.values()), 1 + len(items_by_author))
        survivors, _ = self.filter(twins[1] + "-never-seen", [disliked] + items_by_author)
        self.assertEqual(len(survivors), 1 + len(items_by_author))
        # ...and counts them on its /metrics endpoint (gRPC port + 1000).
        metrics = self.filter_metrics()
        self.assertGreaterEqual(metrics.get("blocked_item", 0), 1)
        self.assertGreaterEqual(metrics.get("blocked_author", 0), 1)

        # follow: the followed author's items come back through follow_author.
        follower = next(u for u in reversed(self.spare)
                        if self.stack.redis_cli("SCARD", "%s:user:%s:follows" % (NS, u)) == "0")
        self.spare.remove(follower)
        self.assertEqual(len(self.recall(follower, "follow_author").candidates), 0)
        items_of = collections.Counter(self.author_of.values())
        item = next(i for i in sorted(self.author_of) if items_of[self.author_of[i]] >= 3)
        self.feedback(follower, item, "EVENT_TYPE_FOLLOW")
        followed = self.author_of[item]
        resp = self.recall(follower, "follow_author")
        self.assertGreater(len(resp.candidates), 0)
        for c in resp.candidates:
            self.assertEqual(self.author_of[c.item_id], followed, c.item_id)

    def test_05_cache_recall_returns_ranked_but_unshown(self):
        user = self.take_user()
        key = "%s:user:%s:cache" % (NS, user)
        first = self.recommend(user, count=10, debug=True)
        shown = set(it.item_id for it in first.items)
        cached = [int(x) for x in self.stack.redis_cli("LRANGE", key, "0", "-1").split()]
        pushed = self.trace(first)["cache"].items_out
        self.assertGreater(pushed, 0)
        self.assertEqual(len(cached), pushed)
        self.assertEqual(len(cached), len(set(cached)))
        self.assertFalse(shown & set(cached))
        # The cache channel returns exactly those items (oldest first).
        recalled = [c.item_id for c in self.recall(user, "cache", 500).candidates]
        self.assertEqual(recalled, list(reversed(cached)))
        # The next request recalls them through the cache channel, and what
        # it shows leaves the cache.
        second = self.recommend(user, count=10, debug=True)
        trace = self.trace(second)
        self.assertEqual(trace["recall/cache"].items_out, len(cached))
        self.assertGreater(int(self.trace_fields(trace["merge/cache"])["kept"]), 0)
        from_cache = [it.item_id for it in second.items if "cache" in it.channels]
        self.assertTrue(from_cache, "no item of the second answer came from the cache")
        self.assertTrue(set(from_cache) <= set(cached))
        after = [int(x) for x in self.stack.redis_cli("LRANGE", key, "0", "-1").split()]
        self.assertFalse(set(it.item_id for it in second.items) & set(after))
        self.assertEqual(len(after), len(set(after)))
        self.assertLessEqual(len(after), self.cfg["orchestrator"]["cache"]["capacity"])

    def test_06_one_bad_channel_in_a_batched_call_degrades_alone(self):
        """The orchestrator sends every channel of the recall endpoint in one
        batched call: a user whose UserCF record is corrupt gets usercf
        reported as failed (its own reason and trace entry, with the recall
        service's message) while the other channels of the same call are
        merged and served."""
        gen = self.stack.redis_cli("GET", "%s:gen:usercf" % NS)
        src = self.take_user()
        while self.stack.redis_cli("EXISTS", "%s:usercf@%s:%s" % (NS, gen, src)) != "1":
            src = self.take_user()  # IndexError when no spare user has UserCF neighbours
        user = src + "-badcf"
        self.clone_user(src, user)
        key = "%s:usercf@%s:%s" % (NS, gen, user)
        self.assertEqual(self.stack.redis_cli("EXISTS", key), "1", key)
        self.assertEqual(self.stack.redis_cli("SET", key, "\x0a\x05\x08"), "OK")
        resp = self.recommend(user, count=10, debug=True)
        self.assertEqual(len(resp.items), 10)
        self.assertTrue(resp.degraded)
        self.assertEqual(list(resp.degraded_reasons), ["recall/usercf: UNAVAILABLE"])
        trace = self.trace(resp)
        self.assertTrue(trace["recall/usercf"].degraded)
        self.assertEqual(trace["recall/usercf"].status_code,
                         grpc.StatusCode.UNAVAILABLE.value[0])
        self.assertIn("usercf", trace["recall/usercf"].message)
        self.assertEqual(trace["recall/usercf"].items_out, 0)
        for name in self.channel_names("normal"):
            if name == "usercf":
                continue
            self.assertFalse(trace["recall/" + name].degraded, name)
        self.assertGreater(trace["recall/itemcf"].items_out, 0)
        for it in resp.items:
            self.assertNotIn("usercf", list(it.channels))


if __name__ == "__main__":
    unittest.main(verbosity=2, failfast=False)
