"""End-to-end test of the Unix-socket hops: scripts/stack.sh --unix starts
redis-server and the six services each also listening on a socket in the
data dir, the services reaching Redis, and the orchestrator its stages,
through those sockets. An independent python gRPC client checks that

- Recommend answers over the orchestrator's socket (unix:PATH) with a full,
  undegraded list in which every stage ran;
- the services' Redis connections are Unix-socket clients (Redis flags U),
  none of them TCP;
- the orchestrator reached each stage over its socket: the stage's socket
  has connected peers (stack.sh's own health checks use TCP), and the
  stage's metrics count the calls;
- a service given a relative --listen-unix path, a socket in a missing
  directory, or a relative unix: Redis address exits non-zero with a line
  naming it.
Everything is torn down even on failure."""

import os
import re
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
STAGES = ("recall", "filter", "prerank", "rank", "rerank")
SOCKET_CONNECTED = "03"  # SS_CONNECTED in /proc/net/unix's St column


def connected_peers(path):
    """Connected stream sockets bound to `path` (the server ends of accepted
    connections carry the listener's path in /proc/net/unix)."""
    n = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            cols = line.split()
            if len(cols) >= 8 and cols[7] == path and cols[5] == SOCKET_CONNECTED:
                n += 1
    return n


class UnixSocketTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-unix-"
    STACK = {"extra_args": ["--unix"]}

    @classmethod
    def set_up_class(cls):
        cls.users = [u for u in tl.read_tsv_column(os.path.join(cls.world, "users.tsv"))[:60]
                     if int(cls.stack.redis_cli("LLEN", "cascade:user:%s:lastn" % u)) >= 5]
        if not cls.users:
            raise RuntimeError("the generated world has no user with a history")

    def sock(self, name):
        return os.path.join(self.stack.data_dir, name + ".sock")

    def recommend_over_unix(self, user, count=10):
        channel = grpc.insecure_channel("unix:" + self.sock("orchestrator"))
        try:
            stub = self.pb.recommender_grpc.RecommenderStub(channel)
            req = self.pb.recommender.RecommendRequest(
                user=self.pb.common.UserContext(user_id=user), count=count, debug=True)
            return stub.Recommend(req, timeout=TIMEOUT_S)
        finally:
            channel.close()

    def test_01_recommend_over_the_orchestrator_socket(self):
        resp = self.recommend_over_unix(self.users[0])
        ids = [it.item_id for it in resp.items]
        self.assertEqual(len(ids), 10)
        self.assertEqual(len(set(ids)), 10)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        stages = {t.stage: t for t in resp.trace}
        for stage in ("merge", "filter", "prerank", "rank", "rerank"):
            self.assertIn(stage, stages)
            self.assertEqual(stages[stage].status_code, 0, stage)
        self.assertGreater(stages["recall/itemcf"].items_out, 0)

    def test_02_services_reach_redis_over_its_socket(self):
        self.recommend_over_unix(self.users[-1])
        clients = self.stack.redis_cli("CLIENT", "LIST").splitlines()
        unix = [c for c in clients if re.search(r"\bflags=\S*U", c)]
        # Every connection but redis-cli's own (TCP, cmd=client) is a Unix client.
        tcp = [c for c in clients if c not in unix and "cmd=client" not in c]
        # The orchestrator, recall, filter, prerank and rank hold connections.
        self.assertGreaterEqual(len(unix), 5, clients)
        self.assertEqual(tcp, [], "\n".join(clients))
        for c in unix:
            self.assertIn("addr=" + self.sock("redis"), c)

    def test_03_orchestrator_reaches_each_stage_over_its_socket(self):
        self.recommend_over_unix(self.users[0])
        for stage in STAGES:
            self.assertGreaterEqual(connected_peers(self.sock(stage)), 1, stage)
            url = "http://127.0.0.1:%d/metrics" % (self.stack.ports[stage] + 1000)
            text = urllib.request.urlopen(url, timeout=TIMEOUT_S).read().decode()
            ok = re.search(r'cascade_rpc_requests_total\{method="[^"]+",code="OK"\} (\d+)', text)
            self.assertIsNotNone(ok, stage)
            self.assertGreaterEqual(int(ok.group(1)), 1, stage)

    def run_service(self, *args):
        cmd = [tl.bin_path("cascade-recall"), "--listen", "127.0.0.1:0", "--metrics-listen",
               "off", "--redis", "127.0.0.1:%d" % self.stack.redis_port] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)

    def test_04_bad_socket_paths_are_refused_with_a_clear_line(self):
        res = self.run_service("--listen-unix", "relative.sock")
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn('--listen-unix: expected an absolute path shorter than 108 bytes, '
                      'got "relative.sock"', res.stderr)
        missing = os.path.join(self.tmp.path, "no-such-dir", "recall.sock")
        res = self.run_service("--listen-unix", missing)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("listen unix:%s: cannot bind" % missing, res.stderr)
        res = self.run_service("--redis", "unix:redis.sock")
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn('--redis: expected host:port or unix:/path, got "unix:redis.sock"',
                      res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
