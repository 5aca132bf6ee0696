"""cascade-cli recommend and feedback end to end, against the real stack
(scripts/stack.sh: a private redis-server and the six services, a generated
world) and checked with an independent python gRPC client:

- `recommend` prints what the orchestrator serves: for a user and a cloned
  twin (no experiments configured, so both get the same answer), the items
  the CLI prints for one are, in order, the items a python Recommend of the
  same request returns for the other; every id in the catalogue, no repeats;
- `feedback` writes one event that lands in {ns}:events with the fields
  given (user, item, type, value, rid, a timestamp and an event id);
- bad input exits non-zero with one readable line and nothing recorded: an
  unknown flag, a missing or too-long user id, an unknown event type, and a
  server that is not there."""

import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

NS = "cascade"
TIMEOUT_S = 30
# An item row of `cascade-cli recommend`: position, then the item id.
ROW_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s")


def cli(command, *args):
    return subprocess.run([tl.bin_path("cascade-cli"), command] + list(args),
                          capture_output=True, text=True, timeout=60)


def printed_items(stdout):
    """(position, item) of each row under the table header, in print order."""
    lines = stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.split()[:2] == ["pos", "item"]]
    if len(header) != 1:
        raise AssertionError("no item table in:\n" + stdout)
    rows = []
    for line in lines[header[0] + 1:]:
        m = ROW_RE.match(line)
        if not m:
            break
        rows.append((int(m.group(1)), int(m.group(2))))
    return rows


class CliTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-cli-"
    # No experiments: buckets hash the user id, so a twin with another id
    # must not land in another experiment.
    CONFIG = {"experiments": None}
    WORLD = {"users": 200, "items": 200, "events": 6000, "train": False}

    @classmethod
    def set_up_class(cls):
        cls.catalogue = set(int(i) for i in tl.read_tsv_column(
            os.path.join(cls.world, "items.tsv")))
        users = tl.read_tsv_column(os.path.join(cls.world, "users.tsv"))
        # Users with a history, so the personal channels have seeds.
        cls.users = [u for u in users[:80]
                     if int(cls.stack.redis_cli("LLEN", "%s:user:%s:lastn" % (NS, u))) >= 5]
        if len(cls.users) < 3:
            raise RuntimeError("the generated world has too few users with a history")

    def cli(self, command, *args):
        return cli(command, "--addr", self.stack.addr(), "--timeout-ms", "20000", *args)

    def python_recommend(self, user, count):
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user, device="cli"), count=count)
        return self.recommender().Recommend(req, timeout=TIMEOUT_S)

    def events(self):
        return int(self.stack.redis_cli("XLEN", "%s:events" % NS))

    def assert_one_line_error(self, res, code, *words):
        self.assertEqual(res.returncode, code, res.stdout + res.stderr)
        self.assertEqual(res.stdout, "")
        self.assertTrue(res.stderr.startswith("cascade-cli"), res.stderr)
        self.assertEqual(res.stderr.count("\n"), 1, res.stderr)
        for w in words:
            self.assertIn(w, res.stderr)

    # ------------------------------------------------------------ recommend

    def test_1_recommend_prints_the_served_list(self):
        user = self.users[0]
        twin = user + "-twin"
        self.stack.clone_user(user, twin, NS)
        res = self.cli("recommend", "--user", user, "--count", "12", "--request-id", "cli-it-1")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stderr, "")
        first = res.stdout.splitlines()[0]
        self.assertTrue(first.startswith("user %s  request cli-it-1  12 items" % user), first)
        # A degraded answer (a stage past its budget on a loaded machine) is
        # not the twin's list; it names its reasons.
        self.assertNotIn("degraded:", res.stdout, res.stdout)
        rows = printed_items(res.stdout)
        self.assertEqual([p for p, _ in rows], list(range(12)))
        items = [i for _, i in rows]
        self.assertEqual(len(set(items)), 12, "repeats: %s" % items)
        self.assertTrue(set(items) <= self.catalogue, set(items) - self.catalogue)
        # The same request through python for the twin: the same list.
        resp = self.python_recommend(twin, 12)
        self.assertFalse(resp.degraded, list(resp.degraded_reasons))
        self.assertEqual(items, [it.item_id for it in resp.items],
                         "cli:\n%s\npython (twin):\n%s" % (res.stdout, resp))

    def test_2_recommend_debug_prints_the_trace(self):
        res = self.cli("recommend", "--user", self.users[1], "--count", "3", "--debug")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(len(printed_items(res.stdout)), 3)
        trace = res.stdout[res.stdout.index("\ntrace:\n"):]
        for stage in ("filter", "prerank", "rank", "rerank"):
            self.assertRegex(trace, r"\n  %s\s+OK\s" % stage)

    # ------------------------------------------------------------ feedback

    def test_3_feedback_lands_in_the_event_stream(self):
        user, item = self.users[2], min(self.catalogue)
        before = self.events()
        t0 = int(time.time())
        res = self.cli("feedback", "--user", user, "--item", str(item), "--type", "play",
                       "--value", "42.5", "--request-id", "cli-it-fb")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, "accepted 1 event\n")
        self.assertEqual(self.events(), before + 1)
        out = self.stack.redis_cli("XREVRANGE", "%s:events" % NS, "+", "-", "COUNT", "1")
        lines = out.splitlines()
        fields = dict(zip(lines[1::2], lines[2::2]))  # lines[0] is the entry id
        self.assertEqual(fields["user"], user)
        self.assertEqual(fields["item"], str(item))
        self.assertEqual(fields["type"], "play")
        self.assertEqual(float(fields["value"]), 42.5)
        self.assertEqual(fields["rid"], "cli-it-fb")
        self.assertTrue(fields["eid"], fields)
        self.assertTrue(t0 - 5 <= int(fields["ts"]) <= int(time.time()) + 5, fields)
        # A click of an item new to the user also marks it consumed (the
        # record script writes stream, last-n and consumed together).
        consumed = "%s:user:%s:consumed" % (NS, user)
        fresh = min(self.catalogue - set(int(i) for i in self.stack.redis_cli(
            "SMEMBERS", consumed).split()))
        lastn = int(self.stack.redis_cli("LLEN", "%s:user:%s:lastn" % (NS, user)))
        res = self.cli("feedback", "--user", user, "--item", str(fresh), "--type", "click")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(self.events(), before + 2)
        self.assertEqual(self.stack.redis_cli("SISMEMBER", consumed, str(fresh)), "1")
        self.assertEqual(int(self.stack.redis_cli("LLEN", "%s:user:%s:lastn" % (NS, user))),
                         min(lastn + 1, 1000))  # feedback.lastn_max

    # ------------------------------------------------------------ bad input

    def test_4_bad_input_exits_non_zero_with_a_readable_line(self):
        before = self.events()
        user = self.users[0]
        self.assert_one_line_error(self.cli("recommend", "--user", user, "--colour", "red"), 2,
                                   "--colour")
        self.assert_one_line_error(self.cli("recommend", "--count", "5"), 2, "--user")
        self.assert_one_line_error(self.cli("recommend", "--user", user, "--count", "0"), 1,
                                   "INVALID_ARGUMENT", "count")
        self.assert_one_line_error(
            self.cli("feedback", "--user", user, "--item", "1", "--type", "adore"), 2, "adore")
        # A user id the server refuses (longer than 64 bytes): its status and why.
        long_user = "u" * 65
        self.assert_one_line_error(self.cli("recommend", "--user", long_user), 1,
                                   "INVALID_ARGUMENT", "user")
        self.assert_one_line_error(
            self.cli("feedback", "--user", long_user, "--item", "1", "--type", "click"), 1,
            "INVALID_ARGUMENT", "user")
        self.assertEqual(self.events(), before, "a refused event was recorded")
        # No server: a port held bound but not listening refuses connections.
        with socket.socket() as dead:
            dead.bind(("127.0.0.1", 0))
            addr = "127.0.0.1:%d" % dead.getsockname()[1]
            for args in (("recommend", "--user", user),
                         ("feedback", "--user", user, "--item", "1", "--type", "click")):
                res = cli(args[0], "--addr", addr, "--timeout-ms", "2000", *args[1:])
                self.assert_one_line_error(res, 1, addr, "UNAVAILABLE")


if __name__ == "__main__":
    unittest.main(verbosity=2)
