"""The preStop drain (docs/deploy.md): SIGUSR1 makes a running service report
NOT_SERVING on grpc.health.v1 while it keeps answering calls, so a load
balancer takes it out of rotation before SIGTERM stops it; SIGTERM then stops
it with exit status 0. Checked on a real stack with the python client."""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
SERVING, NOT_SERVING = 1, 2


class DrainTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-drain-"
    WORLD = None

    def health(self, channel, service=""):
        stub = self.pb.health_grpc.HealthStub(channel)
        return stub.Check(self.pb.health.HealthCheckRequest(service=service),
                          timeout=TIMEOUT_S).status

    def test_sigusr1_reports_not_serving_and_keeps_serving(self):
        with grpc.insecure_channel(self.stack.addr("rerank")) as channel:
            self.assertEqual(self.health(channel), SERVING)
            os.kill(self.stack.pid("rerank"), signal.SIGUSR1)
            # Poll health (the signal is handled asynchronously); no fixed sleep.
            deadline = time.monotonic() + TIMEOUT_S
            while self.health(channel) != NOT_SERVING:
                self.assertLess(time.monotonic(), deadline, "still SERVING after SIGUSR1")
                time.sleep(0.05)
            self.assertEqual(self.health(channel, "cascade.v1.ReRank"), NOT_SERVING)
            # Still serving calls while draining.
            rerank = channel.unary_unary(
                "/cascade.v1.ReRank/ReRank",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=self.pb.rerank.ReRankResponse.FromString)
            cand = [self.pb.common.Candidate(item_id=i, rank_score=1.0 / i) for i in (1, 2, 3)]
            resp = rerank(self.pb.rerank.ReRankRequest(
                user=self.pb.common.UserContext(user_id="u1"), candidates=cand, count=2),
                timeout=TIMEOUT_S)
            self.assertEqual(len(resp.candidates), 2)
        # The other services are untouched.
        with grpc.insecure_channel(self.stack.addr("rank")) as channel:
            self.assertEqual(self.health(channel), SERVING)
        self.assertEqual(self.stack.terminate("rerank"), 0)


if __name__ == "__main__":
    sys.exit(0 if unittest.main(exit=False).result.wasSuccessful() else 1)
