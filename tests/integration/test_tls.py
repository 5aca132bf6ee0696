"""End-to-end test of TLS: scripts/stack.sh with --tls-cert/--tls-key/--tls-ca
and --tls-client-ca/--tls-client-cert/--tls-client-key (certificates made
here with openssl) starts the six services serving TLS only and requiring
client certificates, and an independent python gRPC client checks that

- a plaintext client, and a TLS client without a client certificate, are
  refused (UNAVAILABLE: the handshake fails);
- a TLS client with the CA and a client certificate gets an answer;
- the orchestrator reaches the stages over mTLS (Recall counts OK calls);
- cascade-cli connects with CASCADE_TLS_* from the environment and fails
  without them.
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
TLS_VARS = ("CASCADE_TLS_CERT", "CASCADE_TLS_KEY", "CASCADE_TLS_CA", "CASCADE_TLS_CLIENT_CA",
            "CASCADE_TLS_CLIENT_CERT", "CASCADE_TLS_CLIENT_KEY")


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    steps = [["req", "-x509"] + key + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                                      "-subj", "/CN=test-ca"]]
    for who in ("server", "client"):
        steps.append(["req"] + key + ["-keyout", who + ".key", "-out", who + ".csr",
                                      "-subj", "/CN=" + who])
        steps.append(["x509", "-req", "-in", who + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", who + ".crt", "-days", "2",
                      "-extfile", who + ".ext"])
    for s in steps:
        subprocess.run(["openssl"] + s, cwd=d, check=True, capture_output=True,
                       timeout=TIMEOUT_S)


def tls_args(certs):
    """stack.sh options for mTLS with the certificates make_certs wrote."""
    p = lambda n: os.path.join(certs, n)  # noqa: E731
    return ["--tls-cert", p("server.crt"), "--tls-key", p("server.key"),
            "--tls-ca", p("ca.crt"), "--tls-client-ca", p("ca.crt"),
            "--tls-client-cert", p("client.crt"), "--tls-client-key", p("client.key")]


class TlsTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-tls-"
    CONFIG = None  # the shipped config as it is
    WORLD = None

    @classmethod
    def setUpClass(cls):
        for var in TLS_VARS:
            os.environ.pop(var, None)
        super().setUpClass()

    @classmethod
    def stack_options(cls):
        cls.certs = os.path.join(cls.tmp.path, "certs")
        os.makedirs(cls.certs)
        make_certs(cls.certs)
        return {"extra_args": tls_args(cls.certs)}

    def read(self, name):
        with open(os.path.join(self.certs, name), "rb") as f:
            return f.read()

    def recommend(self, channel):
        stub = self.pb.recommender_grpc.RecommenderStub(channel)
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id="u1"), count=5)
        return stub.Recommend(req, timeout=TIMEOUT_S)

    def assert_refused(self, channel):
        with self.assertRaises(grpc.RpcError) as cm:
            self.recommend(channel)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_plaintext_and_certless_clients_are_refused(self):
        addr = self.stack.addr("orchestrator")
        self.assert_refused(grpc.insecure_channel(addr))
        creds = grpc.ssl_channel_credentials(root_certificates=self.read("ca.crt"))
        self.assert_refused(grpc.secure_channel(addr, creds))

    def test_mtls_client_is_served_and_orchestrator_uses_mtls(self):
        creds = grpc.ssl_channel_credentials(root_certificates=self.read("ca.crt"),
                                             private_key=self.read("client.key"),
                                             certificate_chain=self.read("client.crt"))
        self.assertIsNotNone(self.recommend(grpc.secure_channel(self.stack.addr(), creds)))
        url = "http://127.0.0.1:%d/metrics" % (self.stack.ports["recall"] + 1000)
        text = urllib.request.urlopen(url, timeout=TIMEOUT_S).read().decode()
        ok = re.search(r'cascade_rpc_requests_total\{method="cascade.v1.Recall/Recall",'
                       r'code="OK"\} (\d+)', text)
        self.assertIsNotNone(ok, text)
        self.assertGreaterEqual(int(ok.group(1)), 1)

    def test_cli_takes_tls_from_the_environment(self):
        cli = [tl.bin_path("cascade-cli"), "recommend", "--addr", self.stack.addr(), "--user",
               "u1", "--count", "3"]
        res = subprocess.run(cli, capture_output=True, text=True, timeout=TIMEOUT_S)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("UNAVAILABLE", res.stderr)
        env = dict(os.environ, CASCADE_TLS_CA=os.path.join(self.certs, "ca.crt"),
                   CASCADE_TLS_CLIENT_CERT=os.path.join(self.certs, "client.crt"),
                   CASCADE_TLS_CLIENT_KEY=os.path.join(self.certs, "client.key"))
        res = subprocess.run(cli, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        self.assertEqual(res.returncode, 0, res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
