"""New-item boosting with an impression target through the real stack
(scripts/stack.sh --consumer, a small generated world): with
orchestrator.exploration.target_impressions = 3 within target_window_s = 600, an item put through PutItems
is boosted into new users' exploration slots; once the consumer has counted
its 3 served impressions ({ns}:ictr:{id}, from the serve records) it is no
longer boosted, and the metrics show it (the skip counter, the census
gauges). Conditions are polled with a deadline, never slept on."""

import os
import re
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
NS = "cascade"
TARGET = 3

poll = tl.poll


class BoostTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-boost-"
    STACK = {"sets": ["orchestrator.exploration.target_impressions=%d" % TARGET,
                      "orchestrator.exploration.target_window_s=600",
                      "orchestrator.exploration.max_rank_share=1",
                      "consumer.block_ms=200", "consumer.name=boost-test"],
             "extra_args": ["--consumer"]}
    WORLD = {"users": 200, "items": 200, "events": 6000}

    def impressions(self, item):
        v = self.stack.redis_cli("HGET", "%s:ictr:%d" % (NS, item), "impression")
        return int(v) if v else 0

    def explored(self, user, item):
        """Recommend for a new user; True when item is boosted for them: it is
        in the exploration pool the orchestrator weighs (the trace's
        qualified=N; the world's other new items are past the window, so the
        pool holds this item or nothing). Whether the slot then shows it
        depends on the ranker: an item the re-ranker already chose is served
        as ranked. Waits until the consumer has counted every serve of it."""
        stub = self.recommender()
        resp = stub.Recommend(self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user), count=10, debug=True),
            timeout=TIMEOUT_S)
        self.served += sum(1 for it in resp.items if it.item_id == item)
        poll(lambda: self.impressions(item) == self.served, "served impressions counted")
        trace = [t.message for t in resp.trace if t.stage == "exploration"]
        m = re.search(r"qualified=(\d+)", trace[0]) if trace else None
        return bool(m) and int(m.group(1)) > 0

    def test_boost_stops_at_target(self):
        item = 990777
        self.served = 0
        stub = self.recommender()
        stub.PutItems(self.pb.recommender.PutItemsRequest(items=[self.pb.recommender.NewItem(
            item_id=item, author_id=1, category=1, media_type=2, duration_s=20)]),
            timeout=TIMEOUT_S)
        # The Recall list cache sees the put within its generation refresh.
        recall = grpc.insecure_channel(self.stack.addr("recall"))
        call = tl.recall_stub(self.pb, recall)
        req = self.pb.recall.RecallRequest(user=self.pb.common.UserContext(user_id="boost-probe"),
                                           channels=["new"], quota=100)
        poll(lambda: item in [c.item_id for c in call(req, timeout=TIMEOUT_S).candidates],
             "the new channel recalls the item")
        recall.close()
        # Behind its target, the new item is boosted: new users get it in
        # their exploration slot (the world's items are hours old, past the
        # 10-minute window, so it is the only item the target boosts).
        boosted = 0
        for n in range(TARGET):
            if self.explored("boost-a-%d" % n, item):
                boosted += 1
        self.assertGreaterEqual(boosted, 1, "the new item was never boosted")
        # Boost until the consumer has counted the target.
        n = 0
        while self.impressions(item) < TARGET:
            n += 1
            self.assertLess(n, 200, "the target was never reached")
            self.explored("boost-b-%d" % n, item)
        # At its target: never boosted again.
        for n in range(10):
            self.assertFalse(self.explored("boost-c-%d" % n, item),
                             "boosted after %d impressions" % self.impressions(item))
        body = urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % (self.stack.ports["orchestrator"] + tl.METRICS_OFFSET),
            timeout=TIMEOUT_S).read().decode()
        skipped = [l for l in body.splitlines()
                   if l.startswith("cascade_orchestrator_explore_target_skipped_total")]
        self.assertTrue(skipped and float(skipped[0].split()[-1]) >= 10, skipped)
        self.assertIn("cascade_orchestrator_new_items_behind_target", body)
        self.assertIn("cascade_orchestrator_new_items_target_met", body)


if __name__ == "__main__":
    unittest.main()
