"""Interop test: an independent client (python grpcio, stubs generated from our
.proto files by grpc_tools into a temp dir) talks to a real local stack and
checks Recommend, Health.Check and the first message of Health.Watch."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30


class InteropTest(unittest.TestCase):
    tmp = stack = pb = channel = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-interop-")
        try:
            cls.pb = tl.generate_stubs(os.path.join(cls.tmp.path, "stubs"))
            config = tl.write_config(os.path.join(cls.tmp.path, "cascade.json"))
            cls.stack = tl.Stack(os.path.join(cls.tmp.path, "stack"), config=config)
            cls.stack.start()
            world = tl.build_world(cls.stack, cls.tmp.path, users=200, items=150, events=8000)
            cls.users = tl.read_tsv_column(os.path.join(world, "users.tsv"))
            cls.items = [int(i) for i in tl.read_tsv_column(os.path.join(world, "items.tsv"))]
            cls.channel = grpc.insecure_channel(cls.stack.addr())
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.channel is not None:
            cls.channel.close()
        if cls.stack is not None:
            cls.stack.stop()
        if cls.tmp is not None:
            cls.tmp.cleanup()

    def test_recommend(self):
        stub = self.pb.recommender_grpc.RecommenderStub(self.channel)
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=self.users[0], request_id="interop-rid-1"),
            count=7, debug=True)
        resp = stub.Recommend(req, timeout=TIMEOUT_S)
        self.assertEqual(len(resp.items), 7)
        self.assertEqual(len({it.item_id for it in resp.items}), 7)
        self.assertEqual(resp.request_id, "interop-rid-1")
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        self.assertEqual(resp.experiments.bucket_count, 1000)
        self.assertGreater(len(resp.experiments.layers), 0)
        for layer in resp.experiments.layers:
            self.assertLess(layer.bucket, 1000)
            self.assertTrue(layer.experiment)
        self.assertIn("rerank", [t.stage for t in resp.trace])
        # The request id also travels as x-request-id metadata.
        req2 = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=self.users[1]), count=3)
        resp2 = stub.Recommend(req2, timeout=TIMEOUT_S,
                               metadata=(("x-request-id", "interop-rid-2"),))
        self.assertEqual(resp2.request_id, "interop-rid-2")
        self.assertEqual(len(resp2.items), 3)
        # A hostile request id (control character, 20 KB) is replaced by a
        # generated one; the stage calls still succeed.
        for i, bad in enumerate(("rid\x01ERROR", "a" * 20 * 1024)):
            req3 = self.pb.recommender.RecommendRequest(
                user=self.pb.common.UserContext(user_id=self.users[2 + i], request_id=bad),
                count=3)
            resp3 = stub.Recommend(req3, timeout=TIMEOUT_S)
            self.assertNotEqual(resp3.request_id, bad)
            self.assertRegex(resp3.request_id, r"^[0-9a-f]{16}$")
            self.assertFalse(resp3.degraded, list(resp3.degraded_reasons))
            self.assertEqual(len(resp3.items), 3)

    def test_recommend_fields_and_slots(self):
        """Every item says where it is, why, and its scores; the caller's
        slots are served at their positions, once (then filtered as seen)."""
        rec = self.pb.recommender
        stub = self.pb.recommender_grpc.RecommenderStub(self.channel)
        user = self.pb.common.UserContext(user_id=self.users[5])
        ad, ops = 987654321, 987654322  # not in the catalogue: nobody recalls them
        resp = stub.Recommend(rec.RecommendRequest(
            user=user, count=8, slots=[rec.Slot(position=0, item_id=ad, source="ads"),
                                       rec.Slot(position=4, item_id=ops, source="ops:launch")]),
            timeout=TIMEOUT_S)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        self.assertEqual(len(resp.items), 8)
        self.assertEqual([it.position for it in resp.items], list(range(8)))
        self.assertEqual((resp.items[0].item_id, resp.items[0].reason, resp.items[0].source),
                         (ad, rec.ITEM_REASON_INSERTED, "ads"))
        self.assertEqual((resp.items[4].item_id, resp.items[4].reason, resp.items[4].source),
                         (ops, rec.ITEM_REASON_INSERTED, "ops:launch"))
        ranked = [it for it in resp.items if it.reason == rec.ITEM_REASON_RANKED]
        self.assertGreaterEqual(len(ranked), 5)  # one may be an exploration item
        for it in resp.items:
            self.assertIn(it.reason, (rec.ITEM_REASON_RANKED, rec.ITEM_REASON_EXPLORATION,
                                      rec.ITEM_REASON_INSERTED))
            if it.reason != rec.ITEM_REASON_INSERTED:
                self.assertEqual(it.source, "exploration" if it.reason ==
                                 rec.ITEM_REASON_EXPLORATION else "")
                self.assertEqual(it.score, it.rank_score)  # score = the fused rank score
        # The re-ranker's selection values are reported apart from the score.
        self.assertTrue(any(it.rerank_score != 0 for it in ranked))
        self.assertTrue(any(it.rerank_score != it.score for it in ranked))
        # Shown once, the ad is filtered out for this user; its place goes to
        # a ranked item.
        resp2 = stub.Recommend(rec.RecommendRequest(
            user=user, count=8, slots=[rec.Slot(position=0, item_id=ad, source="ads")]),
            timeout=TIMEOUT_S)
        self.assertNotIn(ad, [it.item_id for it in resp2.items])
        self.assertEqual(resp2.items[0].reason, rec.ITEM_REASON_RANKED)
        # A bad slot is refused, naming the field.
        with self.assertRaises(grpc.RpcError) as cm:
            stub.Recommend(rec.RecommendRequest(
                user=user, count=8, slots=[rec.Slot(position=8, item_id=ad, source="ads")]),
                timeout=TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("slots[0].position 8 is outside the list (count 8)",
                      cm.exception.details())

    def test_slot_items_respect_blocks(self):
        """A slot item the user disliked, or whose author they hid, is not
        served (the filter looks the author of a bare slot item up in its
        record); a twin user without the blocks gets both at their slots."""
        rec, common = self.pb.recommender, self.pb.common
        stub = self.pb.recommender_grpc.RecommenderStub(self.channel)
        disliked, hidden = 987654330, self.items[3]  # the second one has a record (author)
        blocker, twin = "interop-slot-blocker", "interop-slot-twin"
        events = [common.Event(user_id=blocker, item_id=disliked,
                               type=common.EventType.Value("EVENT_TYPE_DISLIKE")),
                  common.Event(user_id=blocker, item_id=hidden,
                               type=common.EventType.Value("EVENT_TYPE_HIDE_AUTHOR"))]
        stub.Feedback(rec.FeedbackRequest(events=events), timeout=TIMEOUT_S)
        slots = [rec.Slot(position=1, item_id=disliked, source="ads"),
                 rec.Slot(position=2, item_id=hidden, source="ops")]
        served = {}
        for user in (blocker, twin):
            resp = stub.Recommend(rec.RecommendRequest(
                user=common.UserContext(user_id=user), count=6, slots=slots), timeout=TIMEOUT_S)
            self.assertFalse(resp.degraded, list(resp.degraded_reasons))
            served[user] = [it.item_id for it in resp.items]
        self.assertEqual(served[twin][1:3], [disliked, hidden])
        self.assertNotIn(disliked, served[blocker])
        self.assertNotIn(hidden, served[blocker])

    def test_recommend_invalid(self):
        stub = self.pb.recommender_grpc.RecommenderStub(self.channel)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.Recommend(self.pb.recommender.RecommendRequest(
                user=self.pb.common.UserContext(user_id=""), count=5), timeout=TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("user.user_id is empty", cm.exception.details())
        # protobuf-c does not check proto3 strings: a user id that is not
        # UTF-8 (hand-encoded, since Python's protobuf refuses to) is refused.
        user = b"\x0a\x02\xff\xfe"  # UserContext{user_id: 0xff 0xfe}
        raw = b"\x0a" + bytes([len(user)]) + user + b"\x10\x05"  # user, count 5
        call = self.channel.unary_unary("/cascade.v1.Recommender/Recommend",
                                        request_serializer=None, response_deserializer=None)
        with self.assertRaises(grpc.RpcError) as cm:
            call(raw, timeout=TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("user.user_id is not valid UTF-8", cm.exception.details())

    def test_health_check(self):
        stub = self.pb.health_grpc.HealthStub(self.channel)
        serving = self.pb.health.HealthCheckResponse.SERVING
        for service in ("", "cascade.v1.Recommender"):
            resp = stub.Check(self.pb.health.HealthCheckRequest(service=service),
                              timeout=TIMEOUT_S)
            self.assertEqual(resp.status, serving, service)
        with self.assertRaises(grpc.RpcError) as cm:
            stub.Check(self.pb.health.HealthCheckRequest(service="no.such.Service"),
                       timeout=TIMEOUT_S)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_health_watch_first_message(self):
        stub = self.pb.health_grpc.HealthStub(self.channel)
        stream = stub.Watch(self.pb.health.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
        first = next(stream)
        self.assertEqual(first.status, self.pb.health.HealthCheckResponse.SERVING)
        stream.cancel()


if __name__ == "__main__":
    unittest.main(verbosity=2)
