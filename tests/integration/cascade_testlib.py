"""Shared helpers for Cascade's integration and interop tests.

An independent client: python grpcio stubs generated from our .proto files
into a temporary directory (never committed), a local stack started and
stopped through scripts/stack.sh on free loopback ports, and a small
synthetic world built with cascade-datagen and cascade-build.

Environment (set by ctest): CASCADE_BIN_DIR, CASCADE_SOURCE_DIR, CASCADE_BUILD_DIR.
"""

import importlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR = os.environ.get(
    "CASCADE_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("CASCADE_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
STACK_SH = os.path.join(SOURCE_DIR, "scripts", "stack.sh")

# Offsets from the port base, as scripts/stack.sh assigns them.
PORT_OFFSETS = {"orchestrator": 0, "recall": 1, "filter": 2, "prerank": 3, "rank": 4,
                "rerank": 5}
REDIS_OFFSET = 9
HEALTH_SERVICE = {"orchestrator": "cascade.v1.Recommender", "recall": "cascade.v1.Recall",
                  "filter": "cascade.v1.Filter", "prerank": "cascade.v1.PreRank",
                  "rank": "cascade.v1.Rank", "rerank": "cascade.v1.ReRank"}


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------- stubs

class Protos:
    """Generated message and stub modules, imported from a temp dir."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        if out_dir not in sys.path:
            sys.path.insert(0, out_dir)
        imp = importlib.import_module
        self.common = imp("cascade.v1.common_pb2")
        self.recommender = imp("cascade.v1.recommender_pb2")
        self.recommender_grpc = imp("cascade.v1.recommender_pb2_grpc")
        self.recall = imp("cascade.v1.recall_pb2")
        self.filter = imp("cascade.v1.filter_pb2")
        self.prerank = imp("cascade.v1.prerank_pb2")
        self.rank = imp("cascade.v1.rank_pb2")
        self.rerank = imp("cascade.v1.rerank_pb2")
        self.health = imp("cascade_test_health.v1.health_pb2")
        self.health_grpc = imp("cascade_test_health.v1.health_pb2_grpc")


def generate_stubs(out_dir):
    """Run grpc_tools.protoc over proto/ into out_dir and import the result.

    health.proto is compiled from a copy under another directory name: its
    generated module would otherwise live at grpc/health/v1 and clash with the
    grpcio package itself. The proto package (grpc.health.v1), and so the
    method paths on the wire, stay the same."""
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    cascade_protos = sorted(
        os.path.join("cascade", "v1", f)
        for f in os.listdir(os.path.join(proto_dir, "cascade", "v1"))
        if f.endswith(".proto") and f != "records.proto")
    health_root = os.path.join(out_dir, "_health_proto")
    os.makedirs(os.path.join(health_root, "cascade_test_health", "v1"), exist_ok=True)
    shutil.copy(os.path.join(proto_dir, "grpc", "health", "v1", "health.proto"),
                os.path.join(health_root, "cascade_test_health", "v1", "health.proto"))
    for include, files in ((proto_dir, cascade_protos),
                           (health_root, [os.path.join("cascade_test_health", "v1",
                                                       "health.proto")])):
        cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", include,
               "--python_out=" + out_dir, "--grpc_python_out=" + out_dir] + files
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError("protoc failed: %s\n%s" % (" ".join(cmd), res.stderr))
    return Protos(out_dir)


# --------------------------------------------------------------------- ports

def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# Every service serves Prometheus /metrics on its gRPC port + METRICS_OFFSET.
METRICS_OFFSET = 1000


def free_port_base(span=10, attempts=200):
    """A base port such that base..base+span-1 (the services and redis) and
    base+1000..base+1000+span-1 (their /metrics endpoints) are all free on
    127.0.0.1."""
    rng = random.Random()
    # Below the kernel's ephemeral range (outgoing connections of every other
    # process take ports from it at any time, so a probed-free port there can
    # be gone by the time a service binds it).
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_lo = 32768
    top = max(ephemeral_lo - METRICS_OFFSET - span, 12000)
    for _ in range(attempts):
        base = rng.randrange(10000, top, 10)
        if all(_port_free(base + off + i) for off in (0, METRICS_OFFSET) for i in range(span)):
            return base
    raise RuntimeError("no free block of %d loopback ports (and their metrics ports) found"
                       % span)


# What stack.sh prints when a port was taken between the probe and the bind:
# its own port check, redis-server's and our services' bind errors.
BIND_FAILURES = ("cannot listen on", "Address already in use", "cannot bind (address in use")
START_ATTEMPTS = 3

# --------------------------------------------------------------------- processes

def run(cmd, timeout=600, check=True, env=None, quiet=False):
    """Run a command, echoing it unless quiet; on failure raise with its output."""
    if not quiet:
        log("+ " + " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise RuntimeError("command failed (exit %d): %s\n--- stdout:\n%s\n--- stderr:\n%s"
                           % (res.returncode, " ".join(cmd), res.stdout[-4000:],
                              res.stderr[-4000:]))
    return res


def bin_path(name):
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        raise RuntimeError("%s not found; build first (cmake --build build)" % path)
    return path


class Stack:
    """A local stack in its own data dir on free ports, via scripts/stack.sh."""

    def __init__(self, data_dir, config=None, split_channels=(), sets=(), extra_args=()):
        """extra_args: more stack.sh options (--tls-*, --redis-password-file, ...)."""
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.config = config or os.path.join(SOURCE_DIR, "config", "cascade.json")
        self.split_channels = list(split_channels)
        self.sets = list(sets)
        self.base = free_port_base()
        self.redis_port = self.base + REDIS_OFFSET
        self.model_dir = os.path.join(data_dir, "models")
        self.ports = dict((k, self.base + v) for k, v in PORT_OFFSETS.items())
        for i, ch in enumerate(self.split_channels):
            self.ports["recall-" + ch] = self.base + 6 + i
        self.running = self.started_once = False

    def addr(self, name="orchestrator"):
        return "127.0.0.1:%d" % self.ports[name]

    def _args(self):
        args = ["--port-base", str(self.base), "--data-dir", self.data_dir,
                "--bin-dir", BIN_DIR, "--config", self.config, "--model-dir", self.model_dir]
        for ch in self.split_channels:
            args += ["--split-channel", ch]
        for s in self.sets:
            args += ["--set", s]
        return args + self.extra_args

    def _move(self, base):
        """Put the whole stack on another port base (before its first start)."""
        shift = base - self.base
        self.base = base
        self.redis_port = base + REDIS_OFFSET
        self.ports = dict((name, port + shift) for name, port in self.ports.items())

    def start(self):
        """Start the stack. The ports were probed free, not held: when another
        process takes one before the stack binds it (stack.sh then fails: a
        port in use, or a process that could not bind), the first start moves
        to another free base and tries again. A restart keeps its ports."""
        attempts = 1 if self.started_once else START_ATTEMPTS
        for attempt in range(attempts):
            try:
                res = run(["bash", STACK_SH, "start"] + self._args(), timeout=300)
                break
            except RuntimeError as e:
                if attempt + 1 == attempts or not any(m in str(e) for m in BIND_FAILURES):
                    raise
                log("stack start on base %d: a port was taken; retrying on another base"
                    % self.base)
                self._move(free_port_base())
        self.running = self.started_once = True
        return res

    def stop(self):
        """Stop everything; returns stack.sh's exit code (0 = all exited 0)."""
        if not self.running:
            return 0
        res = run(["bash", STACK_SH, "stop", "--data-dir", self.data_dir,
                   "--port-base", str(self.base)], timeout=300, check=False)
        self.running = False
        if res.returncode != 0:
            log("stack stop: exit %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
        return res.returncode

    def pid(self, name):
        with open(os.path.join(self.data_dir, name + ".pid")) as f:
            return int(f.read().strip())

    def exit_status(self, name, timeout=30):
        """Exit status recorded by stack.sh's wrapper once `name` ended."""
        path = os.path.join(self.data_dir, name + ".exit")
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise AssertionError("%s did not exit within %ds" % (name, timeout))
            time.sleep(0.05)
        with open(path) as f:
            return int(f.read().strip() or "-1")

    def terminate(self, name):
        """SIGTERM one process and return its exit status."""
        os.kill(self.pid(name), signal.SIGTERM)
        return self.exit_status(name)

    def log_tail(self, name, lines=20):
        try:
            with open(os.path.join(self.data_dir, name + ".log")) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def redis_cli(self, *args):
        res = run(["redis-cli", "-p", str(self.redis_port)] + list(args), quiet=True)
        return res.stdout.strip()

    def scan(self, pattern):
        """The keys matching pattern (redis-cli --scan)."""
        return self.redis_cli("--scan", "--pattern", pattern).split()

    def clone_user(self, src, dst, ns="cascade"):
        """Copy every key of user src (profile, last-n, consumed, follows, and
        the per-user builder artefacts {ns}:{family}@{gen}:...:{uid}) to dst,
        a twin the pipeline answers exactly like src (with no experiments
        configured: buckets hash the user id). Returns the (key, copy) pairs."""
        user_key = "%s:user:%s" % (ns, src)
        moves = [(k, "%s:user:%s" % (ns, dst)) for k in self.scan(user_key)]
        moves += [(k, "%s:user:%s:%s" % (ns, dst, k[len(user_key) + 1:]))
                  for k in self.scan(user_key + ":*")]
        moves += [(k, k[:-len(src)] + dst) for k in self.scan("%s:*@*:%s" % (ns, src))]
        for key, new in moves:
            if self.redis_cli("COPY", key, new, "REPLACE") != "1":
                raise RuntimeError("COPY %s %s failed" % (key, new))
        return moves


def write_config(path, overrides=None, budget_ms=5000):
    """Write config/cascade.json to path with top-level sections replaced by
    overrides and every orchestrator time budget raised to budget_ms, so a
    loaded test machine (or a sanitizer build) does not turn slowness into
    degraded answers: the tests check failures, not speed."""
    with open(os.path.join(SOURCE_DIR, "config", "cascade.json")) as f:
        cfg = json.load(f)
    cfg.update(overrides or {})
    orch = cfg.setdefault("orchestrator", {})
    orch["deadline_ms"] = 3 * budget_ms
    orch.setdefault("exposure", {})["timeout_ms"] = budget_ms
    for ch in orch.get("channels", []):
        ch["timeout_ms"] = budget_ms
    for stage in ("filter", "prerank", "rank", "rerank"):
        orch.setdefault("stages", {}).setdefault(stage, {})["timeout_ms"] = budget_ms
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def build_world(stack, work_dir, users=500, items=300, events=30000, seed=7, train=True,
                datagen_args=()):
    """Generate a small world and load it into the stack's Redis and model dir;
    train=False skips the learned models (the stages then serve their
    heuristics), for tests of the plumbing around them. datagen_args: more
    cascade-datagen flags (--end-ts T, --truth-model, ...)."""
    data = os.path.join(work_dir, "world")
    run([bin_path("cascade-datagen"), "--out", data, "--users", str(users), "--items",
         str(items), "--events", str(events), "--seed", str(seed), "--quiet"]
        + list(datagen_args))
    run([bin_path("cascade-build"), "all", "--data", data,
         "--redis", "127.0.0.1:%d" % stack.redis_port, "--model-dir", stack.model_dir, "--quiet"])
    if not train:
        return data
    # The learned models the services pick up without a restart: the pre-rank
    # hashed LR, the MMoE ranker and the two-tower retrieval model + item index.
    # --force: the small test worlds may not support every model (the gate
    # refuses an MMoE with click AUC < 0.52 with exit 3), but the plumbing
    # tests need each one in place; the gate has its own unit test.
    for job in ("train-prerank", "train-mmoe", "train-two-tower"):
        run([bin_path("cascade-build"), job, "--data", data, "--model-dir", stack.model_dir,
             "--quiet", "--force"])
    return data


def poll(fn, what, timeout=60):
    """Call fn until it returns a true value and return that value; fail
    after timeout seconds (the tests poll conditions, never sleep on them)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def recall_stub(pb, channel):
    """A callable for cascade.v1.Recall/Recall on a grpc channel."""
    return channel.unary_unary(
        "/cascade.v1.Recall/Recall",
        request_serializer=pb.recall.RecallRequest.SerializeToString,
        response_deserializer=pb.recall.RecallResponse.FromString)


def read_tsv_column(path, column=0, skip_header=True):
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            if skip_header and i == 0:
                continue
            if line.strip():
                out.append(line.rstrip("\n").split("\t")[column])
    return out


class TempDir:
    """A temp dir removed on exit unless CASCADE_KEEP_TMP is set."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def cleanup(self):
        if os.environ.get("CASCADE_KEEP_TMP"):
            log("kept " + self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


class StackTestCase(unittest.TestCase):
    """One stack for all the tests of a class, set up once: a temp dir, the
    grpc stubs (cls.pb), a config written from config/cascade.json
    (cls.config), the stack started (cls.stack) and a world built into it
    (cls.world, its data dir); torn down in reverse, also when the set-up
    fails half-way. A test class sets the class attributes below and puts
    what else it needs in set_up_class / tear_down_class (called after the
    world is built / before the stack stops)."""

    TMP_PREFIX = "cascade-it-"
    STUBS = True  # generate the grpc stubs into cls.pb
    CONFIG = {}  # write_config overrides; None: the shipped config as it is
    BUDGET_MS = 5000  # write_config's budget_ms
    STACK = {}  # more Stack arguments: split_channels, sets, extra_args
    WORLD = {}  # build_world arguments; None: no world
    tmp = stack = pb = world = config = None
    channels = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir(cls.TMP_PREFIX)
        cls.channels = {}
        try:
            if cls.STUBS:
                cls.pb = generate_stubs(os.path.join(cls.tmp.path, "stubs"))
            if cls.CONFIG is not None:
                cls.config = write_config(os.path.join(cls.tmp.path, "cascade.json"),
                                          cls.CONFIG, budget_ms=cls.BUDGET_MS)
            cls.stack = Stack(os.path.join(cls.tmp.path, "stack"), config=cls.config,
                              **cls.stack_options())
            cls.stack.start()
            if cls.WORLD is not None:
                cls.world = build_world(cls.stack, cls.tmp.path, **cls.WORLD)
            cls.set_up_class()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.tear_down_class()
        finally:
            for ch in cls.channels.values():
                ch.close()
            cls.channels = {}
            if cls.stack is not None:
                cls.stack.stop()
                cls.stack = None
            if cls.tmp is not None:
                cls.tmp.cleanup()
                cls.tmp = None

    @classmethod
    def stack_options(cls):
        """The Stack arguments beyond data dir and config (default: STACK);
        a class whose options depend on its temp dir overrides this."""
        return dict(cls.STACK)

    @classmethod
    def set_up_class(cls):
        """More set-up once the stack is up and the world built."""

    @classmethod
    def tear_down_class(cls):
        """More tear-down, before the channels close and the stack stops."""

    @classmethod
    def channel(cls, name="orchestrator"):
        """An insecure gRPC channel to one of the stack's services (a name) or
        to a "host:port", kept open for the class and closed at tear-down."""
        import grpc  # here: the module itself is also used where grpcio is missing
        addr = name if ":" in name else cls.stack.addr(name)
        if addr not in cls.channels:
            cls.channels[addr] = grpc.insecure_channel(addr)
        return cls.channels[addr]

    @classmethod
    def recommender(cls):
        """A Recommender stub on the orchestrator."""
        return cls.pb.recommender_grpc.RecommenderStub(cls.channel())
