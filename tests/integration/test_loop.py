"""The closed loop through the real stack: scripts/stack.sh --consumer
(redis-server, the six services and cascade-consumer on free ports) and a
small generated world. A new user is in the cold-start mix; every answer leaves
a serve record; five Feedback clicks reach the consumer's counters exactly
once and the day partition, and the next Recommend leaves the cold-start mix;
the nightly load then reads the partition (the user's record counts the
clicks, last-n still holds them).
The consumer's health and metrics are checked and it stops cleanly on
SIGTERM. Conditions are polled with a deadline, never slept on."""

import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
USER = "loop-new-user-1"

poll = tl.poll


class LoopTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-loop-"
    WORLD = {"users": 200, "items": 200, "events": 6000}

    @classmethod
    def stack_options(cls):
        # The consumer's partitions go into the world's data dir (where
        # build_world generates it), where the nightly build reads them
        # (DATA/events/YYYY-MM-DD.tsv).
        world = os.path.join(cls.tmp.path, "world")
        return {"sets": ["consumer.data_dir=" + world, "consumer.block_ms=200",
                         "consumer.name=loop-test"],
                "extra_args": ["--consumer"]}

    @classmethod
    def set_up_class(cls):
        cls.port = cls.stack.base + 8  # stack.sh --consumer
        cls.metrics_port = cls.port + tl.METRICS_OFFSET

    def recommend(self, user):
        stub = self.recommender()
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user), count=10, debug=True)
        return stub.Recommend(req, timeout=TIMEOUT_S)

    def mix(self, resp):
        return [t.message for t in resp.trace if t.stage == "mix"][0]

    def hget(self, key, field):
        v = self.stack.redis_cli("HGET", key, field)
        return int(v) if v else 0

    def test_loop(self):
        # 1. A new user: cold start, and the answer is in the serve log.
        first = self.recommend(USER)
        self.assertTrue(self.mix(first).startswith("cold_start"), self.mix(first))
        self.assertEqual(len(first.items), 10)
        serves = self.stack.redis_cli("XRANGE", "cascade:serves", "-", "+")
        self.assertIn(first.request_id, serves)
        items = [it.item_id for it in first.items]
        # The consumer turns the serve record into one impression per item.
        poll(lambda: all(self.hget("cascade:ictr:%d" % i, "impression") >= 1 for i in items),
             "served impressions counted")

        # 2. Five clicks, sent twice (a client retry): counted once each.
        stub = self.recommender()
        now = int(time.time())
        events = [self.pb.common.Event(user_id=USER, item_id=i, time_s=now,
                                       request_id=first.request_id,
                                       type=self.pb.common.EventType.Value("EVENT_TYPE_CLICK"))
                  for i in items[:5]]
        for _ in range(2):
            stub.Feedback(self.pb.recommender.FeedbackRequest(events=events), timeout=TIMEOUT_S)
        poll(lambda: self.hget("cascade:uctr:" + USER, "interactions") == 5,
             "the user's 5 interactions counted")
        for i in items[:5]:
            self.assertEqual(self.hget("cascade:ictr:%d" % i, "click"), 1)
        self.assertEqual(self.hget("cascade:uctr:" + USER, "click"), 5)

        # 3. The next request leaves the cold-start mix.
        second = self.recommend(USER)
        self.assertTrue(self.mix(second).startswith("normal: 5 interactions (online)"),
                        self.mix(second))

        # 4. The day partition holds the five clicks, once each, and the
        # first answer's items as server-logged impressions (value 0), each
        # before its click.
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        with open(os.path.join(self.world, "events", day + ".tsv")) as f:
            lines = [l.rstrip("\n").split("\t") for l in f if l.split("\t")[1] == USER]
        clicks = [l for l in lines if l[3] == "click"]
        self.assertEqual(sorted(int(l[2]) for l in clicks), sorted(items[:5]))
        self.assertTrue(all(l[0] == str(now) for l in clicks), clicks)
        shown = [l for l in lines if l[3] == "impression"]
        self.assertEqual(len(clicks) + len(shown), len(lines), lines)
        self.assertTrue(set(items) <= set(int(l[2]) for l in shown), lines)
        self.assertTrue(all(l[4] == "0" for l in shown), shown)
        for i in items[:5]:
            first_seen = min(k for k, l in enumerate(lines) if int(l[2]) == i)
            self.assertEqual(lines[first_seen][3], "impression", lines)

        # 5. The nightly load reads the partition: the user's record now holds
        # the five clicks (no online read needed) and last-n still has them.
        tl.run([tl.bin_path("cascade-build"), "load", "--data", self.world,
                "--redis", "127.0.0.1:%d" % self.stack.redis_port, "--quiet"])
        third = self.recommend(USER)
        self.assertEqual(self.mix(third), "normal: 5 interactions (cold start below 5)")
        self.assertEqual(int(self.stack.redis_cli("LLEN", "cascade:user:%s:lastn" % USER)), 5)

        # 6. Metrics on the metrics port; SIGTERM stops it with status 0.
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                      timeout=TIMEOUT_S).read().decode()
        self.assertIn('cascade_consumer_applied_total{stream="events"} 5', body)
        self.assertIn("cascade_consumer_lag_entries", body)
        health = self.pb.health_grpc.HealthStub(grpc.insecure_channel("127.0.0.1:%d" % self.port))
        self.assertEqual(health.Check(self.pb.health.HealthCheckRequest(service=""),
                                      timeout=TIMEOUT_S).status, 1)  # SERVING
        self.assertEqual(self.stack.terminate("consumer"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
