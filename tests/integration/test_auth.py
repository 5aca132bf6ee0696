"""End-to-end test of Redis AUTH and the bearer token: scripts/stack.sh with
--redis-password-file and --auth-token-file starts redis-server with
requirepass and the six services with the password and the token, and an
independent python gRPC client checks that

- Redis refuses a client without the password (so requirepass is on), and
  the password never appears on a process command line;
- a service refuses a call without a token or with a wrong one
  (UNAUTHENTICATED) and serves the right one;
- the orchestrator sends the token to the stages (Recall answers its calls
  OK and never UNAUTHENTICATED) and authenticates to Redis (Feedback is
  stored in the event stream);
- cascade-build reaches the password-protected Redis through
  CASCADE_REDIS_PASSWORD_FILE, and fails with a clear message without it.
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
PASSWORD = "pw-7c41e2b9"
TOKEN = "tk-0d5a9e11f3"


class AuthTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-auth-"
    CONFIG = None  # the shipped config as it is
    WORLD = None

    @classmethod
    def setUpClass(cls):
        for var in ("CASCADE_REDIS_PASSWORD", "CASCADE_REDIS_PASSWORD_FILE",
                    "CASCADE_AUTH_TOKEN", "CASCADE_AUTH_TOKEN_FILE", "REDISCLI_AUTH"):
            os.environ.pop(var, None)
        super().setUpClass()

    @classmethod
    def stack_options(cls):
        cls.password_file = os.path.join(cls.tmp.path, "redis.pass")
        cls.token_file = os.path.join(cls.tmp.path, "token")
        with open(cls.password_file, "w") as f:
            f.write(PASSWORD + "\n")
        with open(cls.token_file, "w") as f:
            f.write(TOKEN + "\n")
        return {"extra_args": ["--redis-password-file", cls.password_file,
                               "--auth-token-file", cls.token_file]}

    def redis_cli(self, *args, password=None):
        env = dict(os.environ)
        if password:
            env["REDISCLI_AUTH"] = password
        res = subprocess.run(["redis-cli", "-p", str(self.stack.redis_port)] + list(args),
                             capture_output=True, text=True, env=env, timeout=TIMEOUT_S)
        return (res.stdout + res.stderr).strip()

    def recommend(self, addr, metadata):
        stub = self.pb.recommender_grpc.RecommenderStub(grpc.insecure_channel(addr))
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id="u1"), count=5)
        return stub.Recommend(req, timeout=TIMEOUT_S, metadata=metadata)

    def assert_unauthenticated(self, call):
        with self.assertRaises(grpc.RpcError) as cm:
            call()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("bearer token", cm.exception.details())

    def test_redis_requires_the_password(self):
        self.assertIn("NOAUTH", self.redis_cli("GET", "x"))
        self.assertEqual(self.redis_cli("PING", password=PASSWORD), "PONG")
        # Not on any command line (ps shows argv to every user).
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        self.assertNotIn(PASSWORD, out)
        self.assertNotIn(TOKEN, out)

    def test_orchestrator_checks_the_token(self):
        addr = self.stack.addr("orchestrator")
        self.assert_unauthenticated(lambda: self.recommend(addr, None))
        self.assert_unauthenticated(
            lambda: self.recommend(addr, [("authorization", "Bearer " + TOKEN + "x")]))
        self.assert_unauthenticated(
            lambda: self.recommend(addr, [("authorization", TOKEN)]))
        resp = self.recommend(addr, [("authorization", "Bearer " + TOKEN)])
        self.assertIsNotNone(resp)
        # cascade-cli sends the token from the environment, as the services read it.
        cli = [tl.bin_path("cascade-cli"), "recommend", "--addr", addr, "--user", "u1",
               "--count", "3"]
        res = subprocess.run(cli, capture_output=True, text=True, timeout=TIMEOUT_S)
        self.assertEqual(res.returncode, 1)
        self.assertIn("UNAUTHENTICATED", res.stderr)
        env = dict(os.environ, CASCADE_AUTH_TOKEN_FILE=self.token_file)
        res = subprocess.run(cli, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_stage_checks_the_token(self):
        stub = grpc.insecure_channel(self.stack.addr("filter")).unary_unary(
            "/cascade.v1.Filter/Filter",
            request_serializer=self.pb.filter.FilterRequest.SerializeToString,
            response_deserializer=self.pb.filter.FilterResponse.FromString)
        req = self.pb.filter.FilterRequest(user=self.pb.common.UserContext(user_id="u1"))
        self.assert_unauthenticated(lambda: stub(req, timeout=TIMEOUT_S))
        self.assert_unauthenticated(
            lambda: stub(req, timeout=TIMEOUT_S, metadata=[("authorization", "Bearer nope")]))
        stub(req, timeout=TIMEOUT_S, metadata=[("authorization", "Bearer " + TOKEN)])

    def test_orchestrator_passes_token_and_password_on(self):
        addr = self.stack.addr("orchestrator")
        md = [("authorization", "Bearer " + TOKEN)]
        self.recommend(addr, md)
        # Recall is only ever called by the orchestrator in this test.
        url = "http://127.0.0.1:%d/metrics" % (self.stack.ports["recall"] + 1000)
        text = urllib.request.urlopen(url, timeout=TIMEOUT_S).read().decode()
        ok = re.search(r'cascade_rpc_requests_total\{method="cascade.v1.Recall/Recall",'
                       r'code="OK"\} (\d+)', text)
        self.assertIsNotNone(ok, text)
        self.assertGreaterEqual(int(ok.group(1)), 1)
        self.assertNotRegex(text, r'method="cascade.v1.Recall/Recall",code="UNAUTHENTICATED"\} [1-9]')
        # Feedback goes through the orchestrator's authenticated Redis pool.
        stub = self.pb.recommender_grpc.RecommenderStub(grpc.insecure_channel(addr))
        ev = self.pb.common.Event(user_id="u-auth", item_id=7,
                                  type=self.pb.common.EventType.Value("EVENT_TYPE_CLICK"))
        resp = stub.Feedback(self.pb.recommender.FeedbackRequest(events=[ev]),
                             timeout=TIMEOUT_S, metadata=md)
        self.assertEqual(resp.accepted, 1)
        self.assertEqual(self.redis_cli("EXISTS", "cascade:user:u-auth:lastn", password=PASSWORD),
                         "1")

    def test_offline_tool_uses_the_environment(self):
        data = os.path.join(self.tmp.path, "world")
        tl.run([tl.bin_path("cascade-datagen"), "--out", data, "--users", "30", "--items",
                "20", "--events", "300", "--seed", "3", "--quiet"])
        cmd = [tl.bin_path("cascade-build"), "load", "--data", data, "--redis",
               "127.0.0.1:%d" % self.stack.redis_port, "--quiet"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("NOAUTH", res.stderr)
        env = dict(os.environ, CASCADE_REDIS_PASSWORD_FILE=self.password_file)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
