"""End-to-end test of the whole pipeline: a private redis-server and all six
services (plus a second recall process serving only the itemcf channel)
started with scripts/stack.sh on free loopback ports, a small generated world
built with cascade-build, and checks through an independent python gRPC
client: counts and no repeats, A/B assignment, degraded answers when a recall
channel dies, argument validation, malformed bytes on every method, Feedback,
health and graceful SIGTERM. Everything is torn down even on failure."""

import collections
import os
import re
import sys
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

RECALL_SALT, RERANK_SALT = "it-recall-salt", "it-rerank-salt"
EXPERIMENTS = {
    "buckets": 1000,
    "holdout": [[0, 19]],
    "layers": [
        {"name": "recall", "salt": RECALL_SALT,
         "experiments": [{"name": "itemcf_x3", "ranges": [[100, 299]],
                          "params": {"recall.weight.itemcf": 3.0}}]},
        {"name": "rerank", "salt": RERANK_SALT,
         "experiments": [{"name": "mmr_05", "ranges": [[500, 749]],
                          "params": {"rerank.lambda": 0.5}}]},
    ],
}

# Every method of every service, with its request type (for valid and
# truncated messages).
METHODS = [
    ("orchestrator", "/cascade.v1.Recommender/Recommend", "recommender", "RecommendRequest"),
    ("orchestrator", "/cascade.v1.Recommender/Feedback", "recommender", "FeedbackRequest"),
    ("recall", "/cascade.v1.Recall/Recall", "recall", "RecallRequest"),
    ("filter", "/cascade.v1.Filter/Filter", "filter", "FilterRequest"),
    ("filter", "/cascade.v1.Filter/RecordExposure", "filter", "RecordExposureRequest"),
    ("prerank", "/cascade.v1.PreRank/Score", "prerank", "PreRankRequest"),
    ("rank", "/cascade.v1.Rank/Score", "rank", "RankRequest"),
    ("rerank", "/cascade.v1.ReRank/ReRank", "rerank", "ReRankRequest"),
]

TIMEOUT_S = 30
DEBUG_TOKEN = "it-debug-token-7f3a"
# A degrade reason as callers see it: "<stage>: <CODE>" (docs/orchestrator.md).
REASON_RE = re.compile(r"^[a-z0-9_/]+: (?:[A-Z_]+|[a-z_]+)$")


class PipelineTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-it-"
    CONFIG = {"experiments": EXPERIMENTS}
    # The debug trace only for callers with the token (not for every
    # loopback caller), so the gate is tested through the real server.
    STACK = {"split_channels": ["itemcf"],
             "sets": ["orchestrator.debug.loopback=false",
                      "orchestrator.debug.token=" + DEBUG_TOKEN,
                      # a --set after stack.sh's --stage-threads default wins
                      "rank.threads=3"]}

    @classmethod
    def set_up_class(cls):
        # Users with a history (a last-n list), so itemcf has seeds for them.
        cls.users = [u for u in tl.read_tsv_column(os.path.join(cls.world, "users.tsv"))[:60]
                     if int(cls.stack.redis_cli("LLEN", "cascade:user:%s:lastn" % u)) >= 5]
        if len(cls.users) < 3:
            raise RuntimeError("the generated world has too few users with a history")

    # ------------------------------------------------------------ helpers

    def recommend(self, user_id, count=10, debug=False, token=DEBUG_TOKEN):
        """Recommend; a debug request sends x-debug-token `token` (None: none)."""
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user_id), count=count, debug=debug)
        md = [("x-debug-token", token)] if debug and token is not None else None
        return self.recommender().Recommend(req, timeout=TIMEOUT_S, metadata=md)

    def feedback(self, user_id, item_id, type_name):
        ev = self.pb.common.Event(user_id=user_id, item_id=item_id,
                                  type=self.pb.common.EventType.Value(type_name))
        req = self.pb.recommender.FeedbackRequest(events=[ev])
        return self.recommender().Feedback(req, timeout=TIMEOUT_S)

    def health(self, name, service=""):
        stub = self.pb.health_grpc.HealthStub(self.channel(name))
        return stub.Check(self.pb.health.HealthCheckRequest(service=service),
                          timeout=TIMEOUT_S).status

    def raw_call(self, name, method, body):
        """Send raw bytes to a method; returns the gRPC status code."""
        call = self.channel(name).unary_unary(method, request_serializer=None,
                                              response_deserializer=None)
        try:
            call(body, timeout=TIMEOUT_S)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def assert_invalid(self, fn, fragment):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                         cm.exception.details())
        self.assertIn(fragment, cm.exception.details())

    def layers(self, resp):
        return {l.layer: (l.bucket, l.experiment) for l in resp.experiments.layers}

    # ------------------------------------------------------------ tests

    def test_01_every_service_serving(self):
        for name in list(tl.PORT_OFFSETS) + ["recall-itemcf"]:
            serving = self.pb.health.HealthCheckResponse.SERVING
            self.assertEqual(self.health(name), serving, name)
            service = tl.HEALTH_SERVICE[name.split("-")[0]]
            self.assertEqual(self.health(name, service), serving, name + " " + service)

    def test_01a_worker_threads(self):
        """stack.sh starts each stage with one worker (--stage-threads 1), a
        later --set overrides one stage, the orchestrator keeps 4 per core."""
        def workers(name):
            url = "http://127.0.0.1:%d/metrics" % (self.stack.ports[name] + 1000)
            text = urllib.request.urlopen(url, timeout=TIMEOUT_S).read().decode()
            found = re.search(r"^cascade_rpc_worker_threads (\d+)$", text, re.M)
            self.assertIsNotNone(found, name)
            return int(found.group(1))
        for name in ["recall", "recall-itemcf", "filter", "prerank", "rerank"]:
            self.assertEqual(workers(name), 1, name)
        self.assertEqual(workers("rank"), 3)
        self.assertEqual(workers("orchestrator"), 4 * os.sysconf("SC_NPROCESSORS_ONLN"))

    def test_02_recommend_count_distinct(self):
        resp = self.recommend(self.users[0], count=10, debug=True)
        ids = [it.item_id for it in resp.items]
        self.assertEqual(len(ids), 10)
        self.assertEqual(len(set(ids)), 10)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        self.assertTrue(resp.request_id)
        stages = {t.stage: t for t in resp.trace}
        for stage in ("recall/hot", "recall/itemcf", "merge", "filter", "prerank", "rank",
                      "rerank", "exposure"):
            self.assertIn(stage, stages)
            self.assertEqual(stages[stage].status_code, 0, stage)
        for it in resp.items:
            self.assertTrue(it.channels, it)
            self.assertTrue(it.HasField("tasks"), it)
            self.assertGreater(it.attrs.category + it.attrs.author_id, 0, it)
        # A user with history gets itemcf candidates.
        self.assertGreater(stages["recall/itemcf"].items_out, 0)

    def test_02a_debug_trace_needs_the_token(self):
        # Loopback is switched off for this stack: without the token (or with
        # a wrong one) the answer comes without a trace; with it, with one.
        user = self.users[0]
        for token in (None, "wrong-token"):
            resp = self.recommend(user, count=5, debug=True, token=token)
            self.assertEqual(len(resp.items), 5)
            self.assertEqual(len(resp.trace), 0, token)
        resp = self.recommend(user, count=5, debug=True)
        self.assertIn("rerank", [t.stage for t in resp.trace])

    def test_02b_ranker_rejects_become_hard_negatives(self):
        # What the rank stage scored but cut (below rank.keep) is logged for
        # two-tower training: never a shown item, as many as the trace says.
        user = self.users[2]
        resp = self.recommend(user, count=10, debug=True)
        stages = {t.stage: t for t in resp.trace}
        self.assertGreater(stages["rank"].items_in, stages["rank"].items_out,
                           "the world is too small for the ranker to cut anything")
        logged = [int(x) for x in
                  self.stack.redis_cli("LRANGE", "cascade:user:%s:hardneg" % user, "0", "-1").split()]
        self.assertTrue(logged)
        self.assertEqual(len(logged), stages["hardneg"].items_out)
        self.assertFalse(set(logged) & {it.item_id for it in resp.items})

    def test_03_three_calls_never_repeat(self):
        for user in (self.users[1], "it-fresh-user-3"):
            seen = set()
            for _ in range(3):
                ids = [it.item_id for it in self.recommend(user, count=10).items]
                self.assertEqual(len(ids), 10, user)
                self.assertFalse(seen & set(ids), "repeated for %s: %s" % (user, seen & set(ids)))
                seen |= set(ids)

    def test_04_buckets_deterministic_and_layers_independent(self):
        n_users = 2000
        users = ["ab-user-%d" % i for i in range(n_users)]
        assign = {}

        def worker(chunk):
            for u in chunk:
                assign[u] = self.layers(self.recommend(u, count=1))

        threads = [threading.Thread(target=worker, args=(users[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(assign), n_users)
        # Same user, same buckets.
        for u in users[:20]:
            self.assertEqual(self.layers(self.recommend(u, count=1)), assign[u], u)
        # Experiments own their ranges; the holdout is held out in every layer at once.
        table = collections.Counter()
        for u, a in assign.items():
            (rb, rexp), (kb, kexp) = a["recall"], a["rerank"]
            self.assertTrue(0 <= rb < 1000 and 0 <= kb < 1000)
            self.assertEqual(rexp == "holdout", kexp == "holdout", (u, a))
            if rexp != "holdout":
                self.assertEqual(rexp, "itemcf_x3" if 100 <= rb <= 299 else "baseline", (u, a))
                self.assertEqual(kexp, "mmr_05" if 500 <= kb <= 749 else "baseline", (u, a))
            table[(rb // 100, kb // 100)] += 1
        # Independence of the two layers: chi-square over a 10x10 table of
        # bucket deciles. With independent uniform layers the statistic follows
        # chi2(81); 140 is beyond its 0.9999 quantile (~132), so a correlated
        # assignment (same salt, same hash) fails and a correct one passes
        # virtually always.
        rows = collections.Counter()
        cols = collections.Counter()
        for (r, c), n in table.items():
            rows[r] += n
            cols[c] += n
        chi2 = 0.0
        for r in range(10):
            for c in range(10):
                expected = rows[r] * cols[c] / n_users
                chi2 += (table[(r, c)] - expected) ** 2 / expected
        tl.log("layer independence: chi2 = %.1f (81 dof)" % chi2)
        self.assertLess(chi2, 140.0)
        # And each layer is spread over its buckets (no decile empty or doubled).
        for counts in (rows, cols):
            for d in range(10):
                self.assertTrue(100 <= counts[d] <= 300, dict(counts))

    def test_05_invalid_arguments(self):
        self.assert_invalid(lambda: self.recommend("", 10), "user.user_id is empty")
        self.assert_invalid(
            lambda: self.recommender().Recommend(self.pb.recommender.RecommendRequest(count=5),
                                                 timeout=TIMEOUT_S), "user.user_id is empty")
        self.assert_invalid(lambda: self.recommend("u", 0), "1..200")
        self.assert_invalid(lambda: self.recommend("u", 1000), "1..200")
        self.assert_invalid(lambda: self.feedback("", 1, "EVENT_TYPE_CLICK"), "user_id is empty")
        self.assert_invalid(lambda: self.feedback("u", 0, "EVENT_TYPE_CLICK"), "item_id")

    def prerank(self, **fields):
        """PreRank/Score through grpcio, the request built from our .proto."""
        stub = self.channel("prerank").unary_unary(
            "/cascade.v1.PreRank/Score",
            request_serializer=self.pb.prerank.PreRankRequest.SerializeToString,
            response_deserializer=self.pb.prerank.PreRankResponse.FromString)
        req = self.pb.prerank.PreRankRequest(
            user=self.pb.common.UserContext(user_id=self.users[0]), **fields)
        return stub(req, timeout=TIMEOUT_S)

    def test_05a_prerank_columns_match_candidates(self):
        """An independent client sending the pre-rank's candidates as packed
        columns (item_ids, recall_scores, their hits as recall_signals) gets
        scored_ids and scores: the ids, order and scores it gets for the same
        candidates sent as messages. Columns are refused as messages are."""
        pb = self.pb.common
        ids = [int(i) for i in tl.read_tsv_column(os.path.join(self.world, "items.tsv"))[:60]]
        ids.append(987654321)  # no item record
        recall = [((i * 37) % 101) / 10.0 for i in range(len(ids))]  # 0 .. 10
        hits = [[] if i % 3 == 0 else [("itemcf", 1.0 / (1 + i), i)] +
                ([("hot", 0.5, 2 * i)] if i % 2 else []) for i in range(len(ids))]
        names = ["hot", "itemcf"]
        msgs = self.prerank(keep=25, candidates=[
            pb.Candidate(item_id=item, recall_score=r,
                         channels=[pb.ChannelHit(channel=c, norm_score=s, rank=k)
                                   for c, s, k in h])
            for item, r, h in zip(ids, recall, hits)])
        signals = pb.RecallSignals(
            channels=names, hit_count=[len(h) for h in hits],
            hit_channel=[names.index(c) for h in hits for c, _, _ in h],
            hit_norm_score=[s for h in hits for _, s, _ in h],
            hit_rank=[k for h in hits for _, _, k in h])
        cols = self.prerank(keep=25, item_ids=ids, recall_scores=recall, recall_signals=signals)
        self.assertEqual(len(msgs.candidates), 25)
        self.assertEqual(len(cols.candidates), 0)
        self.assertEqual(list(cols.scored_ids), [c.item_id for c in msgs.candidates])
        self.assertEqual(list(cols.scores), [c.prerank_score for c in msgs.candidates])
        self.assertEqual(cols.model_version, msgs.model_version)
        # Without recall_scores every recall score is 0, as a Candidate's default.
        zero = self.prerank(keep=25, candidates=[pb.Candidate(item_id=i) for i in ids])
        cols = self.prerank(keep=25, item_ids=ids)
        self.assertEqual(list(cols.scored_ids), [c.item_id for c in zero.candidates])
        self.assertEqual(list(cols.scores), [c.prerank_score for c in zero.candidates])
        self.assert_invalid(lambda: self.prerank(item_ids=ids, candidates=[pb.Candidate(item_id=1)]),
                            "item_ids and candidates are both set")
        self.assert_invalid(lambda: self.prerank(item_ids=ids, recall_scores=recall[:3]),
                            "recall_scores: 3 entries for %d item_ids" % len(ids))
        self.assert_invalid(lambda: self.prerank(item_ids=ids, recall_signals=pb.RecallSignals(
            channels=["hot"], hit_count=[0])), "recall_signals.hit_count: 1 entries for")
        with self.assertRaises(grpc.RpcError) as cm:
            self.prerank(item_ids=list(range(1, 20002)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("20001 item_ids exceed the limit of 20000", cm.exception.details())

    def rank(self, **fields):
        """Rank/Score through grpcio, the request built from our .proto."""
        stub = self.channel("rank").unary_unary(
            "/cascade.v1.Rank/Score",
            request_serializer=self.pb.rank.RankRequest.SerializeToString,
            response_deserializer=self.pb.rank.RankResponse.FromString)
        req = self.pb.rank.RankRequest(
            user=self.pb.common.UserContext(user_id=self.users[0]), **fields)
        return stub(req, timeout=TIMEOUT_S)

    def test_05b_rank_columns_match_candidates(self):
        """The same for the ranker: columns in, RankResponse columns out (ids,
        rank scores, six task scores per id, attributes), equal to the
        answer for the same candidates sent as messages."""
        pb = self.pb.common
        ids = [int(i) for i in tl.read_tsv_column(os.path.join(self.world, "items.tsv"))[:40]]
        ids.append(987654321)  # no item record
        recall = [((i * 37) % 101) / 10.0 for i in range(len(ids))]
        msgs = self.rank(keep=30, candidates=[pb.Candidate(item_id=i, recall_score=r)
                                              for i, r in zip(ids, recall)])
        cols = self.rank(keep=30, item_ids=ids, recall_scores=recall)
        self.assertEqual(len(msgs.candidates), 30)
        self.assertEqual(len(cols.candidates), 0)
        got = list(zip(cols.scored_ids, cols.rank_scores, cols.author_ids, cols.categories,
                       cols.created_at_s, cols.media_types, cols.durations_s))
        want = [(c.item_id, c.rank_score, c.attrs.author_id, c.attrs.category,
                 c.attrs.created_at_s, c.attrs.media_type, c.attrs.duration_s)
                for c in msgs.candidates]
        self.assertEqual(got, want)
        self.assertEqual(list(cols.task_scores),
                         [v for c in msgs.candidates for v in
                          (c.tasks.p_click, c.tasks.p_like, c.tasks.p_collect, c.tasks.p_share,
                           c.tasks.watch_time_s, c.tasks.p_complete)])
        self.assertTrue(any(a for _, _, a, *_ in got), "no item had an author")
        self.assert_invalid(lambda: self.rank(item_ids=ids, candidates=[pb.Candidate(item_id=1)]),
                            "item_ids and candidates are both set")
        self.assert_invalid(lambda: self.rank(item_ids=ids, recall_scores=recall[:3]),
                            "recall_scores: 3 entries for %d item_ids" % len(ids))
        with self.assertRaises(grpc.RpcError) as cm:
            self.rank(item_ids=list(range(1, 5002)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("5001 item_ids exceed the limit of 5000", cm.exception.details())

    def valid_request(self, module, message):
        """A request of the method's type whose last field is field 1, a
        length-delimited field of at least two bytes, so cutting the last
        byte always breaks it."""
        cls = getattr(getattr(self.pb, module), message)
        if message == "RecordExposureRequest":
            return cls(user_id="truncate-me")
        if message == "FeedbackRequest":
            return cls(events=[self.pb.common.Event(user_id="truncate-me", item_id=1)])
        return cls(user=self.pb.common.UserContext(user_id="truncate-me"))

    def test_06_malformed_bytes_on_every_method(self):
        garbage = [b"\xff" * 32,                     # a varint that never ends
                   b"\x0a\xff\xff\xff\xff\x0f"]      # a length far past the end
        wrong_type = self.pb.health.HealthCheckResponse(status=1).SerializeToString()
        for name, method, module, message in METHODS:
            valid = self.valid_request(module, message).SerializeToString()
            bodies = garbage + [valid[:-1], wrong_type]
            for body in bodies:
                code = self.raw_call(name, method, body)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT,
                                 "%s %r -> %s" % (method, body[:12], code))
            self.assertEqual(self.health(name), self.pb.health.HealthCheckResponse.SERVING,
                             name + " after malformed input")
        # Health itself and unknown methods.
        self.assertEqual(self.raw_call("filter", "/grpc.health.v1.Health/Check", garbage[0]),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.raw_call("rank", "/cascade.v1.Rank/Nope", b""),
                         grpc.StatusCode.UNIMPLEMENTED)

    def test_07_clicked_items_are_never_recommended(self):
        shown = [it.item_id for it in self.recommend("it-fb-reference", count=10).items]
        self.assertEqual(len(shown), 10)
        for item in shown:
            self.assertEqual(self.feedback("it-fb-clicker", item, "EVENT_TYPE_CLICK").accepted, 1)
        # Control: another cold user with no clicks gets some of the same items,
        # so their absence for the clicker is the clicks' doing.
        control = [it.item_id for it in self.recommend("it-fb-control", count=10).items]
        self.assertTrue(set(shown) & set(control), (shown, control))
        for _ in range(3):
            got = [it.item_id for it in self.recommend("it-fb-clicker", count=10).items]
            self.assertEqual(len(got), 10)
            self.assertFalse(set(got) & set(shown), "clicked items came back: %s"
                             % (set(got) & set(shown)))
        events_key = "cascade:events"
        self.assertGreaterEqual(int(self.stack.redis_cli("XLEN", events_key)), 10)

    def test_08_dead_channel_degrades(self):
        user = self.users[2]
        before = self.recommend(user, count=10, debug=True)
        self.assertFalse(before.degraded, list(before.degraded_reasons))
        self.assertEqual(self.stack.terminate("recall-itemcf"), 0)
        resp = self.recommend(user, count=10, debug=True)
        self.assertEqual(len(resp.items), 10)
        self.assertTrue(resp.degraded)
        reasons = list(resp.degraded_reasons)
        self.assertTrue(any(r.startswith("recall/itemcf: UNAVAILABLE") for r in reasons),
                        reasons)
        self.assertFalse(any(r.startswith("recall/hot") for r in reasons), reasons)
        # Reasons are stable codes: no address or port; the details are in the trace.
        recall_port = str(self.stack.ports["recall-itemcf"])
        for r in reasons:
            self.assertRegex(r, REASON_RE)
            self.assertNotIn(recall_port, r)
        itemcf = [t for t in resp.trace if t.stage == "recall/itemcf"]
        self.assertTrue(itemcf and itemcf[0].message, resp.trace)
        for it in resp.items:
            self.assertNotIn("itemcf", list(it.channels))
        trace = {t.stage: t for t in resp.trace}
        self.assertTrue(trace["recall/itemcf"].degraded)
        self.assertEqual(trace["recall/itemcf"].status_code, grpc.StatusCode.UNAVAILABLE.value[0])

    def test_09_sigterm_turns_health_not_serving_and_exits_zero(self):
        names = [n for n in tl.PORT_OFFSETS]
        seen = {n: [] for n in names}
        first = {n: threading.Event() for n in names}

        def watch(name):
            stub = self.pb.health_grpc.HealthStub(self.channel(name))
            try:
                for msg in stub.Watch(self.pb.health.HealthCheckRequest(service=""),
                                      timeout=60):
                    seen[name].append(msg.status)
                    first[name].set()
            except grpc.RpcError:
                pass  # the server went away after telling us
            finally:
                first[name].set()

        threads = [threading.Thread(target=watch, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for n in names:
            self.assertTrue(first[n].wait(TIMEOUT_S), n)
            self.assertEqual(seen[n][:1], [self.pb.health.HealthCheckResponse.SERVING], n)
        self.assertEqual(self.stack.stop(), 0, "some service did not exit 0 on SIGTERM")
        for t in threads:
            t.join(TIMEOUT_S)
        for n in names:
            self.assertEqual(self.stack.exit_status(n), 0, n)
            self.assertIn(self.pb.health.HealthCheckResponse.NOT_SERVING, seen[n],
                          "%s: Watch saw %s" % (n, seen[n]))


if __name__ == "__main__":
    unittest.main(verbosity=2, failfast=False)
