"""The closed loop end to end (issue 10, item 8), reduced size: the real stack
with cascade-consumer (scripts/stack.sh --consumer), a generated world whose
users are simulated from the generator's own click model
(tests/integration/loop_world.py), a simulated hour of Recommend + Feedback.

It checks that
- the simulator's click probability is the generator's (truth.tsv);
- new items reach their impression target (orchestrator.exploration.target_impressions);
- cold-start users leave cold start once their clicks reach the bar;
- every counter equals what was sent, exactly once, although the consumer is
  SIGKILLed mid-run holding a delivered, unacknowledged entry, and restarted
  (items: impressions and clicks; users: clicks and served; the day
  partitions: one line per click);
- the incremental two-tower update (train-two-tower --incremental) on the
  consumer's partitions beats the nightly model on the newest events by a
  clear margin (recall@100 over several hundred held-out clicks), passes the
  gate, and the recall service serves the new version. Since the nightly
  build the world changed: the simulated users' interests drifted
  (World.drift), new items were published through PutItems (one per cold
  user, in its new favourite category), and a trend began (World.
  put_trend_items: new items of the least-clicked category that every
  simulated user now likes): what incremental updates are for.
Conditions are polled with a deadline, never slept on."""

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402
import loop_world  # noqa: E402


USERS, ITEMS, EVENTS = 300, 400, 9000
SIM_USERS = 48     # half of them the coldest users of the world
ROUNDS = 40        # requests per simulated user (10 items each, of 400)
KILL_AFTER = 8     # rounds before the consumer is SIGKILLed
DOWN_ROUNDS = 4    # rounds served while it is down
COLD_BAR = 5       # orchestrator.cold_start.min_interactions in config/cascade.json
TARGET = 10        # orchestrator.exploration.target_impressions: each new item is owed
TARGET_WINDOW_S = 86400  # ... this many impressions within this long of its created_at
TREND_ITEMS = 40   # a trend (World.put_trend_items): new items published at the hour's start
TREND_BONUS = 3.0  # ... and this much added to every simulated user's click logit of them
# The incremental update (k8s/base/incremental-two-tower.yaml runs the same
# objective): pairwise log loss learns the hour's new favourites; see
# docs/closed-loop.md for listwise's figures.
# --redis exports the items put online into DATA/items.online.tsv first (the
# trainers see them from there); --hard-ratio 0: no hard negatives from Redis.
INCREMENTAL_ARGS = ["--epochs", "10", "--mode", "log", "--holdout-frac", "0.5",
                    "--hard-ratio", "0"]
MIN_GAIN = 0.1     # held-out recall@100: incremental > nightly + this


poll = tl.poll


class LoopSimTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-loopsim-"
    WORLD = None  # built in set_up_class: it ends relative to the start time
    consumer = None

    @classmethod
    def stack_options(cls):
        cls.world_dir = os.path.join(cls.tmp.path, "world")
        cls.sets = ["consumer.data_dir=" + cls.world_dir, "consumer.block_ms=5000",
                    "consumer.claim_idle_ms=500", "consumer.name=loop-sim",
                    "orchestrator.exploration.target_impressions=%d" % TARGET,
                    "orchestrator.exploration.target_window_s=%d" % TARGET_WINDOW_S]
        return {"sets": cls.sets, "extra_args": ["--consumer"]}

    @classmethod
    def set_up_class(cls):
        # The world ends two hours ago; the simulated hour is the last one.
        cls.now = int(time.time())
        cls.end_ts = cls.now - 7200
        tl.build_world(cls.stack, cls.tmp.path, users=USERS, items=ITEMS, events=EVENTS,
                       datagen_args=["--end-ts", str(cls.end_ts), "--truth-model"])
        cls.world = loop_world.World(cls.world_dir)

    @classmethod
    def tear_down_class(cls):
        if cls.consumer is not None and cls.consumer.poll() is None:
            cls.consumer.terminate()
            cls.consumer.wait(timeout=30)

    def hget(self, key, field):
        v = self.stack.redis_cli("HGET", key, field)
        return int(v) if v else 0

    def pick_users(self, rng):
        """SIM_USERS/2 cold users (fewer than COLD_BAR interest events in the
        log), the most eager clickers among them by their true propensity,
        and as many others at random; self.outsider: the user with the most
        interest events outside the simulation."""
        interest = dict((u, 0) for u in self.world.users)
        with open(os.path.join(self.world_dir, "events.tsv")) as f:
            f.readline()
            for line in f:
                ts, user, item, typ, _ = line.rstrip("\n").split("\t")
                if typ in ("click", "like", "collect", "share", "follow"):
                    interest[user] += 1
        below = [u for u in interest if interest[u] < COLD_BAR]
        below.sort(key=lambda u: (-self.world.users[u]["bias"], u))
        cold = below[:SIM_USERS // 2]
        rest = sorted(set(interest) - set(cold))
        users = cold + rng.sample(rest, SIM_USERS - len(cold))
        self.outsider = max(sorted(set(interest) - set(users)), key=lambda u: interest[u])
        return cold, users

    def consumer_blocked(self):
        """The consumer is waiting in XREADGROUP ... BLOCK (CLIENT LIST flags=b)."""
        return any("cmd=xreadgroup" in l and "flags=b" in l
                   for l in self.stack.redis_cli("CLIENT", "LIST").splitlines())

    def kill_consumer_holding(self, sim, user):
        """SIGSTOP the consumer while it waits in XREADGROUP, serve one request
        (Redis delivers its serve record to the stopped consumer: pending,
        never acknowledged), then SIGKILL it. Returns the entries it held."""
        pid = self.stack.pid("consumer")
        while True:
            poll(self.consumer_blocked, "the consumer to wait in XREADGROUP")
            os.kill(pid, signal.SIGSTOP)
            if self.consumer_blocked():
                break
            os.kill(pid, signal.SIGCONT)  # it woke in between: try again
        sim.step(user, sim.t0 + sim.span_s // 2)
        held = poll(lambda: int(self.stack.redis_cli(
            "XPENDING", "cascade:serves", "cascade-consumer").split("\n")[0]),
            "the serve record delivered to the stopped consumer")
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(self.stack.exit_status("consumer"), 128 + signal.SIGKILL)
        return held

    def start_consumer(self):
        log = open(os.path.join(self.stack.data_dir, "consumer-restarted.log"), "w")
        type(self).consumer = subprocess.Popen(
            loop_world.consumer_args(self.stack, self.config, self.sets),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def test_loop_sim(self):
        # The simulator draws clicks from the generator's own probabilities.
        self.assertLess(self.world.check_truth(), 1e-4)

        rng = random.Random(42)
        cold, users = self.pick_users(rng)
        # Since the nightly build the simulated users' interests drifted, and
        # new items were published (one per cold user, in its new favourite
        # category): what incremental updates are for.
        self.world.drift(users, rng)
        fresh = self.world.put_new_items(self.pb, self.channel(), cold, 10 ** 6, self.now - 600)
        # A trend: every simulated user takes to new items of a category the
        # log clicked least.
        fresh += self.world.put_trend_items(self.pb, self.channel(), users, TREND_ITEMS,
                                            2 * 10 ** 6, self.now - 3600, TREND_BONUS)
        sim = loop_world.Simulation(self.pb, self.channel(), self.world, rng, t0=self.now - 3600)
        sim.run(users, KILL_AFTER, total_rounds=ROUNDS)
        # Cold users start in the cold-start mix.
        cold_at_start = [u for u in cold if sim.mixes[u][0].startswith("cold_start")]
        self.assertGreaterEqual(len(cold_at_start), len(cold) // 2, sim.mixes)

        # SIGKILL the consumer mid-run while it holds a delivered entry, serve
        # on, restart it, serve the rest. The restarted consumer claims what
        # the dead one held (XAUTOCLAIM after consumer.claim_idle_ms).
        held = self.kill_consumer_holding(sim, users[0])
        sim.run(users, DOWN_ROUNDS, total_rounds=ROUNDS, first_round=KILL_AFTER)
        self.start_consumer()
        sim.run(users, ROUNDS - KILL_AFTER - DOWN_ROUNDS, total_rounds=ROUNDS,
                first_round=KILL_AFTER + DOWN_ROUNDS)
        poll(lambda: loop_world.stream_drained(self.stack), "the consumer to drain both streams")
        body = urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % (self.stack.base + 8 + tl.METRICS_OFFSET),
            timeout=30).read().decode()
        claimed = sum(int(float(l.split()[-1])) for l in body.splitlines()
                      if l.startswith("cascade_consumer_claimed_total{"))
        tl.log("the killed consumer held %d entries; the restarted one claimed %d" %
               (held, claimed))
        self.assertGreaterEqual(claimed, held)
        total_clicks = sum(sim.clicks.values())
        self.assertGreater(total_clicks, SIM_USERS, "too few clicks to test anything")

        # Counters equal what was sent, exactly once.
        for item, n in sim.served.items():
            self.assertEqual(self.hget("cascade:ictr:%d" % item, "impression"), n, item)
        for item, n in sim.clicks.items():
            self.assertEqual(self.hget("cascade:ictr:%d" % item, "click"), n, item)
        for user in users:
            self.assertEqual(self.hget("cascade:uctr:" + user, "click"), sim.user_clicks[user],
                             user)
            self.assertEqual(self.hget("cascade:uctr:" + user, "served"), sim.user_served[user],
                             user)
        lines = []
        for path in glob.glob(os.path.join(self.world_dir, "events", "*.tsv")):
            with open(path) as f:
                lines += [l.rstrip("\n").split("\t") for l in f]
        sent = sorted((str(ts), u, str(i)) for ts, u, i in sim.click_events)
        self.assertEqual(sorted((l[0], l[1], l[2]) for l in lines if l[3] == "click"), sent)

        # New-item boosting: every item still inside its target window at the
        # end of the run (created at most TARGET_WINDOW_S before it) reached
        # its impression target.
        new = sorted(i for i, it in self.world.items.items()
                     if it["created_at"] > int(time.time()) - TARGET_WINDOW_S)
        self.assertTrue(set(fresh) <= set(new))
        tl.log("new items in the target window: %s" % " ".join(
            "%d:%d" % (i, sim.served[i]) for i in new))
        self.assertGreater(len(new), 0)
        for i in new:
            self.assertGreaterEqual(sim.served[i], TARGET, i)

        # Users leave cold start: every cold user whose clicks reached the bar
        # is out of the cold-start mix on its next request.
        left = 0
        for user in cold_at_start:
            if sim.user_clicks[user] >= COLD_BAR:
                mix = sim.mix_of(sim.recommend(user))
                self.assertTrue(mix.startswith("normal:") and "(online)" in mix, (user, mix))
                left += 1
        tl.log("cold-start users: %d of %d reached %d clicks and left cold start (clicks: %s)" %
               (left, len(cold_at_start), COLD_BAR,
                " ".join(str(sim.user_clicks[u]) for u in cold_at_start)))
        self.assertGreater(left, 0)

        # The incremental update on the consumer's partitions is gated against
        # the nightly model on the newest half of the hour's clicks (several
        # hundred: about half of them on the trend's items, which the nightly
        # model maps to its unknown id row). It must beat it clearly, be
        # published, and be served. Five seeds gave 0.46-0.55 against
        # 0.26-0.31 (docs/closed-loop.md); the margin asserted is half the
        # smallest gap seen.
        with open(os.path.join(self.stack.model_dir, "two-tower.latest")) as f:
            nightly = f.read().strip()
        res = tl.run([tl.bin_path("cascade-build"), "train-two-tower", "--incremental",
                      "--data", self.world_dir, "--model-dir", self.stack.model_dir,
                      "--redis", "127.0.0.1:%d" % self.stack.redis_port, "--quiet"]
                     + INCREMENTAL_ARGS, check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        with open(os.path.join(self.world_dir, "items.online.tsv")) as f:
            self.assertEqual(sum(1 for _ in f) - 1, len(fresh))  # every put item, once
        with open(os.path.join(self.stack.model_dir, "two-tower.latest")) as f:
            version = f.read().strip()
        self.assertNotEqual(version, nightly)
        with open(os.path.join(self.stack.model_dir, version + ".safetensors.gate.json")) as f:
            gate = json.load(f)
        tl.log("incremental %s: recall@100 on the newest %d clicks (%d users) %.4f, nightly "
               "%s %.4f" % (version, total_clicks // 2, gate["holdout"], gate["value"], nightly,
                            gate["current"]["value"]))
        self.assertGreaterEqual(gate["holdout"], SIM_USERS * 3 // 4)
        self.assertGreater(gate["value"], gate["current"]["value"] + MIN_GAIN)
        self.assertEqual(gate["current"]["version"], nightly)
        # The recall channel looks at two-tower.latest when a request uses it
        # (recall.channels.two_tower.reload_ms): keep asking for a user out of
        # the simulation with the most interactions (normal mix, fresh catalogue).
        def serving():
            sim.recommend(self.outsider)
            return ("serving " + version) in self.stack.log_tail("recall", 200)
        poll(serving, "the recall service to serve " + version)

if __name__ == "__main__":
    unittest.main(verbosity=2)
