#!/usr/bin/python3
"""The closed loop at full size (issue 10, item 8; docs/closed-loop.md, "The
loop end to end"): a private stack with cascade-consumer (scripts/stack.sh
--consumer) on free ports, a generated world, and simulated users who call
Recommend and click with the generator's true probabilities
(tests/integration/loop_world.py) for a simulated hour, from several threads.
The users' interests drifted since the nightly build, --new-items items are
published through PutItems at the start (boosted to --target impressions), and
a trend began (--trend-items new items every simulated user likes).
Then one incremental two-tower update on the consumer's partitions.

It prints:
  - the consumer's lag p99: cascade_consumer_apply_delay_seconds (XADD to
    applied) over the run, the histogram bucket bound holding the 99th percentile;
  - events/s sustained: stream entries the consumer applied per second of the
    run (Feedback events + serve records), and requests/s;
  - click to changed recommendation: new probe users get four clicks, then a
    fifth; the time from the fifth Feedback's return to the first Recommend
    that left the cold-start mix (median and max over the probes);
  - how many new items reached their impression target;
  - the incremental update's held-out recall on the newest events against the
    nightly model's, and its duration.

  /usr/bin/python3 scripts/loop_sim.py [--users 2000 --items 1000 --events 60000
      --sim-users 400 --rounds 15 --threads 4 --probes 20 --trend-items 40 --keep]

Needs a build (build/bin); uses /usr/bin/python3 (grpcio)."""

import argparse
import concurrent.futures
import json
import os
import random
import re
import statistics
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import cascade_testlib as tl  # noqa: E402
import loop_world  # noqa: E402

import grpc  # noqa: E402


def metrics(port):
    return urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30).read().decode()


def histogram(body, name):
    """[(le, cumulative count)] of a Prometheus histogram, +Inf as inf."""
    out = []
    for m in re.finditer(r'^%s_bucket\{le="([^"]+)"\} (\S+)$' % name, body, re.M):
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        out.append((le, float(m.group(2))))
    return sorted(out)


def quantile(buckets_before, buckets_after, q):
    """Upper bound of the bucket holding quantile q of the observations
    between two scrapes of the same histogram."""
    before = dict(buckets_before)
    diff = [(le, n - before.get(le, 0.0)) for le, n in buckets_after]
    total = diff[-1][1] if diff else 0
    for le, n in diff:
        if total and n >= q * total:
            return le
    return float("nan")


def counter_sum(body, name):
    return sum(float(m.group(1)) for m in re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % name, body,
                                                        re.M))


def probe(pb, chan, user, timeout_s=30):
    """Four clicks, then a fifth; seconds from the fifth's ack to the first
    Recommend out of the cold-start mix (None when it never left)."""
    sim = loop_world.Simulation(pb, chan, None, random.Random(0), t0=int(time.time()))
    resp = sim.recommend(user)
    items = [it.item_id for it in resp.items]
    if len(items) < 5:
        return None

    def click(item):
        ev = pb.common.Event(user_id=user, item_id=item, time_s=int(time.time()),
                             request_id=resp.request_id,
                             type=pb.common.EventType.Value("EVENT_TYPE_CLICK"))
        sim.stub.Feedback(pb.recommender.FeedbackRequest(events=[ev]), timeout=timeout_s)

    for item in items[:4]:
        click(item)
    click(items[4])
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if sim.mix_of(sim.recommend(user)).startswith("normal:"):
            return time.monotonic() - t0
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--events", type=int, default=60000)
    ap.add_argument("--sim-users", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=15, help="requests per simulated user")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--new-items", type=int, default=40,
                    help="items published through PutItems at the start (in drifted users' "
                         "favourite categories)")
    ap.add_argument("--trend-items", type=int, default=40,
                    help="a trend: new items of the least-clicked category, published at the "
                         "start, that every simulated user likes (+--trend-bonus on the logit)")
    ap.add_argument("--trend-bonus", type=float, default=3.0)
    ap.add_argument("--target", type=int, default=20,
                    help="orchestrator.exploration.target_impressions")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()

    tmp = tl.TempDir("cascade-loop-sim-")
    if a.keep:
        os.environ["CASCADE_KEEP_TMP"] = "1"
    stack = chan = None
    try:
        pb = tl.generate_stubs(os.path.join(tmp.path, "stubs"))
        config = tl.write_config(os.path.join(tmp.path, "cascade.json"))
        world_dir = os.path.join(tmp.path, "world")
        stack = tl.Stack(os.path.join(tmp.path, "stack"), config=config,
                         sets=["consumer.data_dir=" + world_dir, "consumer.name=loop-sim",
                               "orchestrator.exploration.target_impressions=%d" % a.target],
                         extra_args=["--consumer"])
        stack.start()
        now = int(time.time())
        tl.build_world(stack, tmp.path, users=a.users, items=a.items, events=a.events,
                       datagen_args=["--end-ts", str(now - 7200), "--truth-model"])
        world = loop_world.World(world_dir)
        chan = grpc.insecure_channel(stack.addr())
        mport = stack.base + 8 + tl.METRICS_OFFSET

        rng = random.Random(a.seed)
        users = rng.sample(sorted(world.users), min(a.sim_users, len(world.users)))
        world.drift(users, rng)
        fresh = []
        for k in range(0, a.new_items, 100):  # PutItems takes at most 100 per call
            fresh += world.put_new_items(pb, chan, users[k:min(k + 100, a.new_items)],
                                         10 ** 7 + k, now - 600)
        if a.trend_items:
            fresh += world.put_trend_items(pb, chan, users, a.trend_items, 2 * 10 ** 7,
                                           now - 3600, a.trend_bonus)
        shards = [users[i::a.threads] for i in range(a.threads)]
        sims = [loop_world.Simulation(pb, chan, world, random.Random(a.seed + i),
                                      t0=now - 3600) for i in range(a.threads)]
        before = metrics(mport)
        t_start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(a.threads) as ex:
            list(ex.map(lambda i: sims[i].run(shards[i], a.rounds), range(a.threads)))
        run_s = time.monotonic() - t_start
        deadline = time.monotonic() + 300
        while not loop_world.stream_drained(stack) and time.monotonic() < deadline:
            time.sleep(0.1)
        drain_s = time.monotonic() - t_start - run_s
        after = metrics(mport)
        name = "cascade_consumer_apply_delay_seconds"
        p99 = quantile(histogram(before, name), histogram(after, name), 0.99)
        p50 = quantile(histogram(before, name), histogram(after, name), 0.50)
        applied = (counter_sum(after, "cascade_consumer_applied_total")
                   - counter_sum(before, "cascade_consumer_applied_total"))
        requests = sum(s.requests for s in sims)
        served_new = [sum(s.served[i] for s in sims) for i in fresh]
        met = sum(1 for n in served_new if n >= a.target)
        clicks = sum(sum(s.clicks.values()) for s in sims)

        delays = [probe(pb, chan, "loop-probe-%d" % i) for i in range(a.probes)]
        ok = sorted(d for d in delays if d is not None)

        with open(os.path.join(stack.model_dir, "two-tower.latest")) as f:
            nightly = f.read().strip()
        t_inc = time.monotonic()
        res = tl.run([tl.bin_path("cascade-build"), "train-two-tower", "--incremental",
                      "--data", world_dir, "--model-dir", stack.model_dir, "--quiet",
                      "--epochs", "10", "--mode", "log", "--holdout-frac", "0.5",
                      "--hard-ratio", "0", "--redis", "127.0.0.1:%d" % stack.redis_port],
                     check=False)
        inc_s = time.monotonic() - t_inc
        with open(os.path.join(stack.model_dir, "two-tower.latest")) as f:
            latest = f.read().strip()
        gate_line = "exit %d: %s" % (res.returncode, (res.stdout + res.stderr).strip()[-300:])
        gates = sorted(p for p in os.listdir(stack.model_dir)
                       if p.startswith("two-tower-") and p.endswith(".gate.json"))
        with open(os.path.join(stack.model_dir, gates[-1])) as f:
            gate = json.load(f)

        print("loop_sim: world %d users, %d items, %d events; %d simulated users x %d rounds, "
              "%d threads" % (a.users, a.items, a.events, len(users), a.rounds, a.threads))
        print("loop_sim: %d Recommend + %d clicks in %.1f s: %.1f requests/s" %
              (requests, clicks, run_s, requests / run_s))
        print("loop_sim: consumer applied %d stream entries: %.1f entries/s sustained over the "
              "run (drained %.2f s after it)" % (applied, applied / run_s, drain_s))
        print("loop_sim: consumer lag (XADD to applied) p50 <= %gs, p99 <= %gs" % (p50, p99))
        print("loop_sim: new items (PutItems): %d of %d reached the target of %d impressions "
              "(min %d, max %d)" % (met, len(fresh), a.target, min(served_new or [0]),
                                    max(served_new or [0])))
        if ok:
            print("loop_sim: click to changed recommendation (5th click to leaving cold start): "
                  "median %.3f s, max %.3f s over %d probes (%d never left)" %
                  (statistics.median(ok), ok[-1], len(ok), len(delays) - len(ok)))
        print("loop_sim: incremental two-tower in %.1f s: recall@100 on the newest events %.4f "
              "vs nightly %s %.4f; %s" %
              (inc_s, gate["value"], nightly, gate["current"]["value"],
               "published" if latest != nightly else gate_line))
        with open("/proc/loadavg") as f:
            print("loop_sim: load average " + f.read().strip())
    finally:
        if chan is not None:
            chan.close()
        if stack is not None:
            stack.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
