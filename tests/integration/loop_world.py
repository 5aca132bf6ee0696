"""Simulated users of the closed loop (issue 10, item 8), shared by
tests/integration/test_loop_sim.py (reduced size) and scripts/loop_sim.py
(full size, prints the loop's figures).

The users are the synthetic world's own: cascade-datagen --truth-model writes
the click model's parameters (truth_users.tsv, truth_items.tsv; docs/data.md),
and World.p_click evaluates the generator's click probability for any
(user, item, time), so a simulated user clicks what the real stack serves with
its true probability. World.check_truth recomputes truth.tsv from the
parameters, which proves the formula here is the generator's.

Simulation.run calls Recommend for each user, draws clicks and sends them with
Feedback, and keeps what it sent: the expected counters."""

import collections
import math
import os
import time

INTERCEPT = -3.4  # CASCADE_DATAGEN_INTERCEPT (services/builder/datagen/datagen.h)
DAY_S = 86400


def _rows(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            yield dict(zip(header, line.rstrip("\n").split("\t")))


class World:
    """The click model of a cascade-datagen world (written with --truth-model)."""

    def __init__(self, data_dir):
        self.users, self.items = {}, {}
        for r in _rows(os.path.join(data_dir, "users.tsv")):
            self.users[r["user_id"]] = {"city": int(r["city"])}
        for r in _rows(os.path.join(data_dir, "truth_users.tsv")):
            u = self.users[r["user_id"]]
            u["bias"] = float(r["user_bias"])
            favs = r["circle_favourites"]
            u["favs"] = set() if favs == "-" else set(int(x) for x in favs.split(","))
            u["theta"] = [float(x) for x in r["theta"].split(",")]
        for r in _rows(os.path.join(data_dir, "items.tsv")):
            self.items[int(r["item_id"])] = {"author": int(r["author_id"]),
                                             "category": int(r["category"]),
                                             "city": int(r["city"]),
                                             "created_at": int(r["created_at"])}
        for r in _rows(os.path.join(data_dir, "truth_items.tsv")):
            self.items[int(r["item_id"])]["quality"] = float(r["quality"])
        self.k = len(next(iter(self.users.values()))["theta"])
        self.data_dir = data_dir

    def p_click(self, user, item, ts):
        """The generator's click probability (docs/data.md, "Labels")."""
        u, it = self.users[user], self.items[item]
        aff = math.log(self.k * u["theta"][it["category"] - 1] + 0.05)
        z = (INTERCEPT + 0.65 * aff + it["quality"] + u["bias"]
             - 0.02 * (ts - it["created_at"]) / DAY_S
             + (0.3 if u["city"] == it["city"] else 0.0)
             + (0.9 if item in u["favs"] else 0.0)
             + u.get("trend", {}).get(item, 0.0))
        return 1.0 / (1.0 + math.exp(-z))

    def drift(self, users, rng):
        """Interest drift (what the notes want incremental updates for: the
        model follows a user's changed interests within hours): each of users
        takes the category interests θ of another world user, drawn by rng,
        from now on. Returns {user: the user whose θ it took}."""
        pool = sorted(set(self.users) - set(users))
        taken = {}
        for u in users:
            other = rng.choice(pool)
            self.users[u]["theta"] = list(self.users[other]["theta"])
            taken[u] = other
        return taken

    def put_new_items(self, pb, channel, users, first_id, created_at, quality=1.0):
        """Publish one new item per user in users through PutItems (the
        catalogue's online path), in that user's favourite category and city,
        by an author of that category, with item quality `quality`, and add it
        to the click model. Returns the new item ids."""
        specs = []
        for user in users:
            u = self.users[user]
            cat = max(range(self.k), key=lambda c: u["theta"][c]) + 1
            specs.append((cat, u["city"]))
        return self._put(pb, channel, specs, first_id, created_at, quality)

    def put_trend_items(self, pb, channel, users, n, first_id, created_at, bonus, quality=0.0):
        """A trend after the nightly build (taste drift in the ground truth):
        n new items are published through PutItems (as put_new_items), all
        in the category the log clicked least (the nightly model has the
        least reason to recall it), by one author of it, in users[0]'s city,
        with item quality `quality`, and every user in users gets `bonus`
        added to the logit of each of them (World.p_click, "trend"). A model
        trained before maps every new item to the unknown id row, so it
        cannot know they are wanted; a model that learns their ID embeddings
        from the hour's clicks can. Returns the new item ids."""
        clicks = collections.Counter()
        for r in _rows(os.path.join(self.data_dir, "events.tsv")):
            if r["type"] == "click" and int(r["item_id"]) in self.items:
                clicks[self.items[int(r["item_id"])]["category"]] += 1
        cats = sorted(set(it["category"] for it in self.items.values()))
        cat = min(cats, key=lambda c: (clicks[c], c))
        specs = [(cat, self.users[users[0]]["city"])] * n
        ids = []
        for k in range(0, n, 100):  # PutItems takes at most 100 per call
            ids += self._put(pb, channel, specs[k:k + 100], first_id + k, created_at, quality)
        for u in users:
            trend = self.users[u].setdefault("trend", {})
            for item in ids:
                trend[item] = bonus
        return ids

    def _put(self, pb, channel, specs, first_id, created_at, quality):
        """PutItems of one item per (category, city) in specs, ids from
        first_id; added to the click model. The trainers see them once a
        cascade-build job with --redis exported {ns}:items:online into
        DATA/items.online.tsv."""
        ids, rows = [], []
        stub = pb.recommender_grpc.RecommenderStub(channel)
        for n, (cat, city) in enumerate(specs):
            authors = [it["author"] for it in self.items.values() if it["category"] == cat]
            author = min(authors) if authors else 0
            item = first_id + n
            self.items[item] = {"author": author, "category": cat, "city": city,
                                "created_at": created_at, "quality": quality}
            rows.append(pb.recommender.NewItem(item_id=item, author_id=author, category=cat,
                                               created_at_s=created_at, city=city,
                                               media_type=1))
            ids.append(item)
        stub.PutItems(pb.recommender.PutItemsRequest(items=rows), timeout=30)
        return ids

    def check_truth(self, limit=2000):
        """Largest |p_click - truth.tsv p| over the first `limit` impressions."""
        worst = 0.0
        for n, r in enumerate(_rows(os.path.join(self.data_dir, "truth.tsv"))):
            if n >= limit:
                break
            p = self.p_click(r["user_id"], int(r["item_id"]), int(r["ts"]))
            worst = max(worst, abs(p - float(r["p_click"])))
        return worst


class Simulation:
    """Users calling Recommend and clicking with their true probabilities.

    sim time runs from t0 over span_s seconds across all requests (a
    simulated hour); clicks carry it as their event time."""

    def __init__(self, pb, channel, world, rng, t0, span_s=3600, count=10, timeout_s=30):
        self.pb, self.world, self.rng = pb, world, rng
        self.stub = pb.recommender_grpc.RecommenderStub(channel)
        self.t0, self.span_s, self.count, self.timeout_s = t0, span_s, count, timeout_s
        self.served = collections.Counter()       # item -> times served
        self.clicks = collections.Counter()       # item -> clicks sent
        self.user_clicks = collections.Counter()  # user -> clicks sent
        self.user_requests = collections.Counter()
        self.user_served = collections.Counter()  # user -> items served to it
        self.mixes = collections.defaultdict(list)  # user -> trace "mix" per request
        self.clicked_at = {}  # user -> wall time of its latest click sent
        self.requests = 0
        self.click_events = []  # (sim ts, user, item) in the order sent

    def recommend(self, user):
        req = self.pb.recommender.RecommendRequest(
            user=self.pb.common.UserContext(user_id=user), count=self.count, debug=True)
        return self.stub.Recommend(req, timeout=self.timeout_s)

    @staticmethod
    def mix_of(resp):
        for t in resp.trace:
            if t.stage == "mix":
                return t.message
        return ""

    def step(self, user, sim_ts):
        """One request of user at sim time sim_ts: serve, draw clicks, send them."""
        resp = self.recommend(user)
        self.requests += 1
        self.user_requests[user] += 1
        self.mixes[user].append(self.mix_of(resp))
        events = []
        for it in resp.items:
            self.served[it.item_id] += 1
            self.user_served[user] += 1
            if self.rng.random() < self.world.p_click(user, it.item_id, sim_ts):
                events.append(self.pb.common.Event(
                    user_id=user, item_id=it.item_id, time_s=sim_ts,
                    request_id=resp.request_id,
                    type=self.pb.common.EventType.Value("EVENT_TYPE_CLICK")))
        if events:
            self.stub.Feedback(self.pb.recommender.FeedbackRequest(events=events),
                               timeout=self.timeout_s)
            self.clicked_at[user] = time.monotonic()
            for e in events:
                self.clicks[e.item_id] += 1
                self.user_clicks[user] += 1
                self.click_events.append((sim_ts, user, e.item_id))
        return resp, len(events)

    def run(self, users, rounds, total_rounds=None, first_round=0, on_round=None):
        """rounds rounds over users (each user one request per round); sim time
        advances evenly over total_rounds (default rounds) from first_round."""
        total = (total_rounds or rounds) * len(users)
        for r in range(first_round, first_round + rounds):
            for i, user in enumerate(users):
                sim_ts = self.t0 + int(self.span_s * (r * len(users) + i) / max(total, 1))
                self.step(user, sim_ts)
            if on_round:
                on_round(r)


def consumer_args(stack, config, sets):
    """The command line scripts/stack.sh gives cascade-consumer (port N+8)."""
    import cascade_testlib as tl
    args = [tl.bin_path("cascade-consumer"), "--config", config,
            "--redis", "127.0.0.1:%d" % stack.redis_port, "--model-dir", stack.model_dir,
            "--listen", "127.0.0.1:%d" % (stack.base + 8)]
    for s in sets:
        args += ["--set", s]
    return args


def stream_drained(stack, group="cascade-consumer"):
    """True when both streams have nothing pending and nothing undelivered
    for the consumer group (XPENDING count 0, XINFO GROUPS lag 0)."""
    for stream in ("cascade:events", "cascade:serves"):
        pending = stack.redis_cli("XPENDING", stream, group).split("\n")[0].strip()
        if pending != "0":
            return False
        info = stack.redis_cli("XINFO", "GROUPS", stream).split("\n")
        fields = dict(zip(info[0::2], info[1::2]))
        if fields.get("lag", "").strip() != "0":
            return False
    return True
