"""Fault suite (issue 9 item 13): what clients see when a stage dies, stalls or
is stopped, when many requests race for one user, and when a hostile client
shares the orchestrator with normal ones. A private redis-server and all six
services (scripts/stack.sh), a small generated world, and independent python
gRPC clients; every scenario runs under concurrent load from a few client
threads.

1. SIGKILL recall under load: every answer still OK (degraded allowed); after
   a restart, answers are non-degraded again within a bounded number of polls.
2. SIGSTOP rank for 3 s under load with a 500 ms client deadline: answers
   arrive (degraded), none later than its deadline plus a generous bound;
   after SIGCONT, non-degraded again.
3. 8 concurrent Recommend for one user: pairwise disjoint answers (exposure
   reservation).
4. SIGTERM of a stage under load: it exits 0, in-flight calls finish, clients
   see no error (degraded answers allowed).
5. A hostile client (20 KB request ids, malformed bytes) next to normal ones:
   the normal clients' answers are neither failed nor degraded.

The scenario code is shared with scripts/fault_suite.py, which runs the same
scenarios longer and prints the figures table of docs/orchestrator.md.
Everything is torn down even on failure."""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 10
LOAD_THREADS = 4
# Rank's own budget: the shipped 500 ms, equal to the client deadline of
# scenario 2. The orchestrator keeps back the later stages' reserve
# (stages.<s>.min_ms, exposure.min_ms), so it skips a stalled rank and still
# answers in time. The reserve is raised from its 20 ms defaults so the check
# holds on a loaded test machine too.
RANK_TIMEOUT_MS = 500
LATER_STAGE_MIN_MS = 100
STALL_DEADLINE_S = 0.5
# How late (beyond its own deadline) a call may come back in scenario 2.
LATE_BOUND_S = 1.0
RECOVERY_POLLS = 300
POLL_INTERVAL_S = 0.1
# Every client thread gets its own connection (grpcio otherwise shares one
# per target across channels in a process), as separate clients would.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def own_channel(addr):
    """A channel on its own connection, connected before it is used: a first
    call on a still-connecting channel can fail UNAVAILABLE at once, which
    would count as a fault the scenario did not cause."""
    ch = grpc.insecure_channel(addr, options=OWN_CONNECTION)
    grpc.channel_ready_future(ch).result(timeout=60)
    return ch


def percentile(values, q):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Load:
    """Client threads calling Recommend in a loop until stop(); every call is
    recorded as a dict (start, end, code, degraded, reasons, items)."""

    def __init__(self, pb, addr, users, threads=LOAD_THREADS, timeout_s=TIMEOUT_S, count=10):
        self.pb, self.addr, self.users = pb, addr, list(users)
        self.n_threads, self.timeout_s, self.count = threads, timeout_s, count
        self.records = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.threads = []

    def _run(self, idx):
        ch = own_channel(self.addr)
        stub = self.pb.recommender_grpc.RecommenderStub(ch)
        i = idx
        try:
            while not self.stopping.is_set():
                user = self.users[i % len(self.users)]
                i += self.n_threads
                req = self.pb.recommender.RecommendRequest(
                    user=self.pb.common.UserContext(user_id=user), count=self.count)
                t0 = time.monotonic()
                try:
                    resp = stub.Recommend(req, timeout=self.timeout_s)
                    rec = dict(start=t0, end=time.monotonic(), code="OK",
                               degraded=resp.degraded, reasons=list(resp.degraded_reasons),
                               items=len(resp.items))
                except grpc.RpcError as e:
                    rec = dict(start=t0, end=time.monotonic(), code=e.code().name,
                               degraded=False, reasons=[e.details() or ""], items=0)
                with self.cond:
                    self.records.append(rec)
                    self.cond.notify_all()
        finally:
            ch.close()

    def start(self):
        for i in range(self.n_threads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def mark(self):
        with self.cond:
            return len(self.records)

    def wait_calls(self, n, timeout=120):
        """Block until n more calls than now have completed."""
        with self.cond:
            target = len(self.records) + n
            if not self.cond.wait_for(lambda: len(self.records) >= target, timeout):
                raise AssertionError("load made no progress: %d of %d calls in %ds"
                                     % (len(self.records), target, timeout))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout_s + 30)
        return list(self.records)


def summarize(records, recovery_s=None):
    lat = [(r["end"] - r["start"]) * 1000.0 for r in records]
    errors = [r for r in records if r["code"] != "OK"]
    degraded = [r for r in records if r["degraded"]]
    return dict(calls=len(records), errors=len(errors),
                error_codes=sorted(set(r["code"] for r in errors)),
                degraded_share=(len(degraded) / len(records)) if records else 0.0,
                p99_ms=percentile(lat, 0.99), max_ms=max(lat) if lat else 0.0,
                recovery_s=recovery_s)


class FaultBench:
    """A stack with a small world and the fault scenarios; used by the tests
    below (short phases) and by scripts/fault_suite.py (long phases)."""

    def __init__(self, users=500, items=300, events=30000):
        self.tmp = tl.TempDir("cascade-faults-")
        self.stack = None
        self.restarted = []
        try:
            self.pb = tl.generate_stubs(os.path.join(self.tmp.path, "stubs"))
            config = tl.write_config(os.path.join(self.tmp.path, "cascade.json"),
                                     {"experiments": None})
            self.stack = tl.Stack(os.path.join(self.tmp.path, "stack"), config=config,
                                  sets=["orchestrator.stages.rank.timeout_ms=%d"
                                        % RANK_TIMEOUT_MS,
                                        "orchestrator.stages.rerank.min_ms=%d"
                                        % LATER_STAGE_MIN_MS,
                                        "orchestrator.exposure.min_ms=%d"
                                        % LATER_STAGE_MIN_MS])
            self.stack.start()
            self.world = tl.build_world(self.stack, self.tmp.path, users=users, items=items,
                                        events=events)
            users = tl.read_tsv_column(os.path.join(self.world, "users.tsv"))
            # The last few users are kept out of the load for scenario 3.
            self.spare_users = users[-20:]
            self.load_users = users[:-20]
            self.channel = grpc.insecure_channel(self.stack.addr())
            self.stub = self.pb.recommender_grpc.RecommenderStub(self.channel)
        except BaseException:
            self.close()
            raise

    def close(self):
        if getattr(self, "channel", None) is not None:
            self.channel.close()
            self.channel = None
        for name in ("recall", "rank", "prerank", "filter", "rerank"):
            try:
                os.kill(self.stack.pid(name), signal.SIGCONT)
            except (OSError, ValueError, AttributeError):
                pass
        if self.stack is not None:
            if self.stack.stop() != 0:
                tl.log("stack stop reported a non-zero exit")
            self.stack = None
        self.tmp.cleanup()

    # ------------------------------------------------------------ helpers

    def load(self, timeout_s=TIMEOUT_S):
        return Load(self.pb, self.stack.addr(), self.load_users, timeout_s=timeout_s).start()

    def recommend(self, user, count=10, timeout=TIMEOUT_S):
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user), count=count)
        return self.stub.Recommend(req, timeout=timeout)

    def restart(self, name):
        """Start `name` again with the command line it had, recorded as stack.sh
        records its processes (<name>.pid, <name>.exit), so stack.sh stop ends
        it. The old process must have ended (its exit file written)."""
        d = self.stack.data_dir
        argv = self.argv[name]
        os.remove(os.path.join(d, name + ".exit"))
        logf = open(os.path.join(d, name + ".log"), "a")
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        with open(os.path.join(d, name + ".pid.tmp"), "w") as f:
            f.write("%d\n" % proc.pid)
        os.replace(os.path.join(d, name + ".pid.tmp"), os.path.join(d, name + ".pid"))

        def reap():
            status = proc.wait()
            with open(os.path.join(d, name + ".exit"), "w") as f:
                f.write("%d\n" % (status if status >= 0 else 128 - status))
        t = threading.Thread(target=reap, daemon=True)
        t.start()
        self.restarted.append(t)
        self.wait_serving(name)

    def remember_argv(self, name):
        with open("/proc/%d/cmdline" % self.stack.pid(name), "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        self.argv = getattr(self, "argv", {})
        self.argv[name] = argv

    def wait_serving(self, name):
        ch = grpc.insecure_channel(self.stack.addr(name))
        try:
            grpc.channel_ready_future(ch).result(timeout=60)
            stub = self.pb.health_grpc.HealthStub(ch)
            for _ in range(RECOVERY_POLLS):
                try:
                    st = stub.Check(self.pb.health.HealthCheckRequest(service=""),
                                    timeout=TIMEOUT_S).status
                    if st == self.pb.health.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(POLL_INTERVAL_S)
            raise AssertionError("%s did not turn SERVING after its restart" % name)
        finally:
            ch.close()

    def poll_recovery(self):
        """Poll Recommend until an answer is OK and non-degraded; returns
        (polls, seconds). Raises when RECOVERY_POLLS polls do not get there."""
        t0 = time.monotonic()
        last = None
        for i in range(1, RECOVERY_POLLS + 1):
            user = self.load_users[i % len(self.load_users)]
            try:
                resp = self.recommend(user)
                if not resp.degraded:
                    return i, time.monotonic() - t0
                last = list(resp.degraded_reasons)
            except grpc.RpcError as e:
                last = "%s: %s" % (e.code().name, e.details())
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError("still degraded after %d polls: %s" % (RECOVERY_POLLS, last))

    # ------------------------------------------------------------ scenarios

    def kill_recall(self, phase_calls):
        """SIGKILL recall under load, restart it. Returns (records during the
        outage, all records, recovery seconds)."""
        self.remember_argv("recall")
        load = self.load()
        try:
            load.wait_calls(phase_calls)
            os.kill(self.stack.pid("recall"), signal.SIGKILL)
            self.stack.exit_status("recall")
            m0 = load.mark()
            load.wait_calls(phase_calls)
            m1 = load.mark()
            t0 = time.monotonic()
            self.restart("recall")
            self.poll_recovery()
            recovery = time.monotonic() - t0
            load.wait_calls(phase_calls)
        finally:
            records = load.stop()
        return records[m0:m1], records, recovery

    def stall_rank(self, stall_s, phase_calls):
        """SIGSTOP rank for stall_s under load with a 500 ms client deadline,
        then SIGCONT. Returns (records during the stall, all, recovery s)."""
        load = self.load(timeout_s=STALL_DEADLINE_S)
        pid = self.stack.pid("rank")
        try:
            load.wait_calls(phase_calls)
            m0 = load.mark()
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(stall_s)  # the fault's duration, not a synchronisation
                m1 = load.mark()
            finally:
                os.kill(pid, signal.SIGCONT)
            t0 = time.monotonic()
            self.poll_recovery()
            recovery = time.monotonic() - t0
            load.wait_calls(phase_calls)
        finally:
            records = load.stop()
        return records[m0:m1], records, recovery

    def same_user_race(self, user, n=8, count=10):
        """n concurrent Recommend for one user; returns the n item-id lists."""
        barrier = threading.Barrier(n)
        out = [None] * n

        def one(i):
            ch = own_channel(self.stack.addr())
            try:
                stub = self.pb.recommender_grpc.RecommenderStub(ch)
                req = self.pb.recommender.RecommendRequest(
                    user=self.pb.common.UserContext(user_id=user), count=count)
                barrier.wait()
                try:
                    out[i] = [it.item_id for it in stub.Recommend(req, timeout=TIMEOUT_S).items]
                except grpc.RpcError as e:
                    out[i] = e
            finally:
                ch.close()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT_S + 30)
        return out

    def terminate_stage(self, name, phase_calls):
        """SIGTERM `name` under load, restart it. Returns (exit status, all
        records, recovery seconds)."""
        self.remember_argv(name)
        load = self.load()
        try:
            load.wait_calls(phase_calls)
            os.kill(self.stack.pid(name), signal.SIGTERM)
            status = self.stack.exit_status(name)
            load.wait_calls(phase_calls)
            t0 = time.monotonic()
            self.restart(name)
            self.poll_recovery()
            recovery = time.monotonic() - t0
            load.wait_calls(phase_calls)
        finally:
            records = load.stop()
        return status, records, recovery

    def shared_connection_hostile(self, normal_calls, header_bytes, terminate=False):
        """One channel (one HTTP/2 connection) shared by a hostile thread
        sending header_bytes x-request-id headers and a normal caller, as a
        gateway multiplexes users. With terminate, the orchestrator gets SIGTERM while
        both run (and is restarted). Returns (normal codes, hostile codes,
        orchestrator exit status or None)."""
        ch = own_channel(self.stack.addr())
        stub = self.pb.recommender_grpc.RecommenderStub(ch)
        stop = threading.Event()
        hostile_codes = {}
        big = "h" * header_bytes
        status = None

        def call(user, metadata=None):
            try:
                stub.Recommend(self.pb.recommender.RecommendRequest(
                    user=self.pb.common.UserContext(user_id=user), count=10),
                    timeout=TIMEOUT_S, metadata=metadata)
                return "OK"
            except grpc.RpcError as e:
                return e.code().name

        def attack():
            while not stop.is_set():
                code = call("hostile", [("x-request-id", big)])
                hostile_codes[code] = hostile_codes.get(code, 0) + 1
        t = threading.Thread(target=attack, daemon=True)
        t.start()
        normal = []
        try:
            for i in range(normal_calls):
                normal.append(call(self.load_users[i % len(self.load_users)]))
            if terminate:
                self.remember_argv("orchestrator")
                os.kill(self.stack.pid("orchestrator"), signal.SIGTERM)
                status = self.stack.exit_status("orchestrator")
        finally:
            stop.set()
            t.join(TIMEOUT_S + 5)
            ch.close()
        if terminate:
            self.restart("orchestrator")
            self.poll_recovery()
        return normal, hostile_codes, status

    def hostile(self, phase_calls, hostile_threads=2):
        """Normal load next to clients sending 20 KB request ids (in the body
        and in x-request-id) and malformed bytes. Returns (normal records,
        hostile call count by status code)."""
        stop = threading.Event()
        codes = {}
        lock = threading.Lock()
        big = "r" * 20000
        method = "/cascade.v1.Recommender/Recommend"
        bodies = [b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f", b"\x12" + b"\x80" * 40,
                  os.urandom(4096)]

        def attack(idx):
            ch = grpc.insecure_channel(self.stack.addr(), options=OWN_CONNECTION)
            stub = self.pb.recommender_grpc.RecommenderStub(ch)
            raw = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
            i = idx
            try:
                while not stop.is_set():
                    kind = i % 4
                    i += 1
                    try:
                        if kind == 0:
                            stub.Recommend(self.pb.recommender.RecommendRequest(
                                user=self.pb.common.UserContext(user_id="hostile",
                                                                request_id=big), count=10),
                                timeout=TIMEOUT_S)
                        elif kind == 1:
                            stub.Recommend(self.pb.recommender.RecommendRequest(
                                user=self.pb.common.UserContext(user_id="hostile"), count=10),
                                timeout=TIMEOUT_S, metadata=[("x-request-id", big)])
                        else:
                            raw(bodies[i % len(bodies)], timeout=TIMEOUT_S)
                        code = "OK"
                    except grpc.RpcError as e:
                        code = e.code().name
                    with lock:
                        codes[code] = codes.get(code, 0) + 1
            finally:
                ch.close()
        attackers = [threading.Thread(target=attack, args=(i,), daemon=True)
                     for i in range(hostile_threads)]
        load = self.load()
        for t in attackers:
            t.start()
        try:
            load.wait_calls(phase_calls)
        finally:
            stop.set()
            for t in attackers:
                t.join(TIMEOUT_S + 30)
            records = load.stop()
        return records, codes


class FaultsTest(unittest.TestCase):
    bench = None
    PHASE = 20

    @classmethod
    def setUpClass(cls):
        cls.bench = FaultBench()

    @classmethod
    def tearDownClass(cls):
        if cls.bench is not None:
            cls.bench.close()

    def assert_no_errors(self, records):
        errors = [r for r in records if r["code"] != "OK"]
        self.assertFalse(errors, "%d of %d calls failed, e.g. %s"
                         % (len(errors), len(records), errors[:3]))

    def test_01_same_user_race_is_disjoint(self):
        out = self.bench.same_user_race(self.bench.spare_users[0])
        for got in out:
            self.assertIsInstance(got, list, got)
            # Every answer is full: when the first round's offer (4 x count)
            # is taken by the others, a second round over the rest of the
            # ranker's order fills it (300 items in the world, 80 asked for).
            self.assertEqual(len(got), 10, "answer sizes: %s"
                             % [g if isinstance(g, Exception) else len(g) for g in out])
        tl.log("answer sizes of 8 racing requests: %s" % [len(g) for g in out])
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                self.assertFalse(set(out[i]) & set(out[j]),
                                 "answers %d and %d share %s" % (i, j, set(out[i]) & set(out[j])))

    def test_02_hostile_client_does_not_hurt_others(self):
        records, codes = self.bench.hostile(self.PHASE * 2)
        tl.log("hostile calls by status: %s" % codes)
        self.assertTrue(codes, "the hostile client made no calls")
        self.assert_no_errors(records)
        degraded = [r for r in records if r["degraded"]]
        self.assertFalse(degraded, "normal answers degraded next to the hostile client: %s"
                         % degraded[:3])
        self.assertFalse(os.path.exists(os.path.join(self.bench.stack.data_dir,
                                                     "orchestrator.exit")),
                         "the orchestrator exited: " + self.bench.stack.log_tail("orchestrator"))

    def test_03_sigkill_recall_under_load(self):
        outage, records, recovery = self.bench.kill_recall(self.PHASE)
        tl.log("sigkill recall: %s" % summarize(records, recovery))
        self.assert_no_errors(records)
        self.assertTrue(any(r["degraded"] for r in outage), "no degraded answer while recall "
                        "was down: the fault did not happen")
        for r in outage:
            self.assertGreater(r["items"], 0, r)

    def test_04_sigstop_rank_under_load(self):
        stalled, records, recovery = self.bench.stall_rank(3.0, self.PHASE)
        tl.log("sigstop rank: %s" % summarize(records, recovery))
        late = [r for r in records
                if r["end"] - r["start"] > STALL_DEADLINE_S + LATE_BOUND_S]
        self.assertFalse(late, "calls came back long after their deadline: %s" % late[:3])
        answered = [r for r in stalled if r["code"] == "OK"]
        self.assertTrue(answered, "no answer while rank was stopped: %s" % stalled[:3])
        self.assertTrue(any(r["degraded"] and any(x.startswith("rank") for x in r["reasons"])
                            for r in answered), answered[:3])
        self.assert_no_errors(records)

    def test_05_sigterm_stage_under_load(self):
        status, records, recovery = self.bench.terminate_stage("prerank", self.PHASE)
        tl.log("sigterm prerank: %s" % summarize(records, recovery))
        self.assertEqual(status, 0)
        self.assert_no_errors(records)

    def test_06_hostile_header_on_a_shared_connection(self):
        # gRPC 1.51 drops the whole connection when one call's headers exceed
        # the server's metadata limit; at 64 KiB (max_metadata_bytes) a 20 KB
        # id passes the transport and is replaced by a generated one, so the
        # calls sharing the connection are unaffected.
        normal, hostile, _ = self.bench.shared_connection_hostile(self.PHASE * 5, 20000)
        tl.log("shared connection, 20 KB header: normal %s, hostile %s"
               % ({c: normal.count(c) for c in set(normal)}, hostile))
        self.assertTrue(hostile, "the hostile thread made no calls")
        self.assertEqual(set(normal), {"OK"}, "normal calls on the hostile client's "
                         "connection failed: %s" % {c: normal.count(c) for c in set(normal)})

    def test_07_sigterm_while_connections_die(self):
        # Above the limit (here 100 KB) the transport drops the connection
        # again and again under the calls in flight. SIGTERM then must drain
        # cleanly: a call whose connection had died used to start its reply
        # on a shut-down completion queue, and gRPC aborted the process.
        normal, hostile, status = self.bench.shared_connection_hostile(
            self.PHASE, 100000, terminate=True)
        tl.log("shared connection, 100 KB header, SIGTERM: normal %s, hostile %s, exit %s"
               % ({c: normal.count(c) for c in set(normal)}, hostile, status))
        self.assertTrue(hostile, "the hostile thread made no calls")
        self.assertEqual(status, 0, "the orchestrator did not drain cleanly: "
                         + self.bench.stack.log_tail("orchestrator"))

if __name__ == "__main__":
    unittest.main(verbosity=2, failfast=False)
