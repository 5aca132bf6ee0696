"""cascade-consumer's health follows Redis (issue 10; docs/closed-loop.md,
"Health"): a private redis-server and one cascade-consumer on free ports.
SERVING while it works (an event sent to the stream is counted); the
redis-server is stopped: NOT_SERVING; a new, empty redis-server on the same
port: SERVING again, the consumer group is created again and the next event
is counted; SIGTERM exits 0. Conditions are polled with a deadline, never
slept on."""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

SERVING, NOT_SERVING = 1, 2
TIMEOUT_S = 10


class ConsumerHealthTest(unittest.TestCase):
    tmp = redis = consumer = chan = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-consumer-health-")
        try:
            cls.pb = tl.generate_stubs(os.path.join(cls.tmp.path, "stubs"))
            base = tl.free_port_base()
            cls.redis_port, cls.port = base + tl.REDIS_OFFSET, base + 8
            cls.start_redis()
            config = tl.write_config(os.path.join(cls.tmp.path, "cascade.json"))
            log = open(os.path.join(cls.tmp.path, "consumer.log"), "w")
            cls.consumer = subprocess.Popen(
                [tl.bin_path("cascade-consumer"), "--config", config,
                 "--redis", "127.0.0.1:%d" % cls.redis_port,
                 "--listen", "127.0.0.1:%d" % cls.port,
                 "--set", "consumer.block_ms=200", "--set", "consumer.name=health-test"],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
            cls.chan = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_redis(cls):
        cls.redis = subprocess.Popen(
            ["redis-server", "--port", str(cls.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", cls.tmp.path],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Ours only when INFO names our process: another test's server that
        # took the port would answer PING too.
        tl.poll(lambda: cls.redis.poll() is not None or
                ("process_id:%d" % cls.redis.pid) in cls.redis_cli("INFO", "server"),
                "our redis-server to answer")
        if cls.redis.poll() is not None:
            raise RuntimeError("redis-server exited with %d (port %d taken?)"
                               % (cls.redis.returncode, cls.redis_port))

    @classmethod
    def redis_cli(cls, *args):
        res = subprocess.run(["redis-cli", "-p", str(cls.redis_port)] + [str(a) for a in args],
                             capture_output=True, text=True, timeout=TIMEOUT_S)
        return res.stdout.strip()

    @classmethod
    def tearDownClass(cls):
        if cls.chan is not None:
            cls.chan.close()
        for p in (cls.consumer, cls.redis):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        if cls.tmp is not None:
            cls.tmp.cleanup()

    def status(self):
        stub = self.pb.health_grpc.HealthStub(self.chan)
        try:
            return stub.Check(self.pb.health.HealthCheckRequest(service=""),
                              timeout=TIMEOUT_S).status
        except grpc.RpcError:
            return None  # not listening yet

    def click_counted(self, item):
        """Send one click to the stream; poll until the consumer counted it."""
        self.redis_cli("XADD", "cascade:events", "*", "user", "u1", "item", item, "type",
                       "click", "value", "0", "ts", "1700000000", "rid", "r1", "eid", "e")
        tl.poll(lambda: self.redis_cli("HGET", "cascade:ictr:%d" % item, "click") == "1",
                "the consumer to count the click on item %d" % item)

    def test_health_follows_redis(self):
        tl.poll(lambda: self.status() == SERVING, "SERVING with Redis up")
        self.click_counted(101)

        self.redis.send_signal(signal.SIGTERM)
        self.assertEqual(self.redis.wait(timeout=30), 0)
        tl.poll(lambda: self.status() == NOT_SERVING, "NOT_SERVING while Redis is down")
        self.assertIsNone(self.consumer.poll(), "the consumer exited")

        # An empty redis-server (no persistence): the group is gone too.
        self.start_redis()
        tl.poll(lambda: self.status() == SERVING, "SERVING after Redis came back")
        self.click_counted(102)

        self.consumer.send_signal(signal.SIGTERM)
        self.assertEqual(self.consumer.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
