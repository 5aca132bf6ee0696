"""Online item ingestion through the real stack (scripts/stack.sh, a small
generated world with a trained two-tower model): PutItems refuses bad items
with INVALID_ARGUMENT naming the field and writes nothing of such a call; a
new item put through the RPC gets its record, is recalled by the new, geo and
city channels, sits in its author's list, and the two_tower channel recalls it
(its vector from the item tower's cold-start path) for users whose vectors are
near it; a changed item leaves its old city list, and Rank, told of the change
by Redis (rank.item_cache.tracking), reads the new record on its next call
although its cache would keep the old one for ten minutes. Conditions are
polled with a deadline (the Recall list cache and the two_tower poll run every
second), never slept on."""

import json
import os
import struct
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

import grpc  # noqa: E402

TIMEOUT_S = 30
NS = "cascade"

poll = tl.poll


class PutItemsTest(tl.StackTestCase):
    TMP_PREFIX = "cascade-put-items-"
    WORLD = {"users": 200, "items": 200, "events": 6000}
    # Without tracking, Rank would serve a cached record this long.
    STACK = {"sets": ["rank.item_cache.ttl_ms=600000"]}

    @classmethod
    def set_up_class(cls):
        cls.items = {}
        with open(os.path.join(cls.world, "items.tsv")) as f:
            next(f)
            for line in f:
                c = line.rstrip("\n").split("\t")
                cls.items[int(c[0])] = c
        cls.users = tl.read_tsv_column(os.path.join(cls.world, "users.tsv"))

    def put(self, *items):
        stub = self.recommender()
        return stub.PutItems(self.pb.recommender.PutItemsRequest(items=list(items)),
                             timeout=TIMEOUT_S)

    def recall(self, channel, user, quota=100, geohash="", city=0):
        call = tl.recall_stub(self.pb, self.channel("recall"))
        req = self.pb.recall.RecallRequest(
            user=self.pb.common.UserContext(user_id=user, geohash=geohash, city=city),
            channels=[channel], quota=quota)
        return [c.item_id for c in call(req, timeout=TIMEOUT_S).candidates]

    def redis(self, *args):
        return self.stack.redis_cli(*[str(a) for a in args])

    def gen(self, family):
        return self.stack.redis_cli("GET", "%s:gen:%s" % (NS, family))

    def item(self, item_id, **kw):
        return self.pb.recommender.NewItem(item_id=item_id, **kw)

    def test_bad_items_refused(self):
        good = self.item(990001, author_id=1, category=1)
        cases = [
            ([], "items is empty"),
            ([self.item(0)], "items[0].item_id"),
            ([good, self.item(990002, geohash="ab!")], "items[1].geohash"),
            ([self.item(990002, tags=list(range(9)))], "items[0].tags"),
            ([self.item(990002, media_type=5)], "items[0].media_type"),
            ([self.item(990002, duration_s=-1)], "items[0].duration_s"),
            ([self.item(990002, duration_s=float("nan"))], "items[0].duration_s"),
            ([self.item(990002, created_at_s=-5)], "items[0].created_at_s"),
            ([self.item(990002, created_at_s=int(time.time()) + 3 * 86400)],
             "items[0].created_at_s"),
            ([good, self.item(990001)], "items[1].item_id"),
        ]
        for items, field in cases:
            with self.assertRaises(grpc.RpcError) as cm:
                self.put(*items)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, field)
            self.assertIn(field, cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.put(*[self.item(990100 + i) for i in range(101)])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # A refused call writes nothing, not even its good items.
        self.assertEqual(self.redis("EXISTS", "%s:item:990001" % NS), "0")

    def test_cli_item_add(self):
        cli = [tl.bin_path("cascade-cli"), "item", "add", "--addr", self.stack.addr()]
        ok = tl.run(cli + ["--item", "990500", "--author", "3", "--category", "2",
                           "--media-type", "note", "--tags", "1,2", "--city", "1"])
        self.assertIn("wrote item 990500", ok.stdout)
        self.assertEqual(self.redis("EXISTS", "%s:item:990500" % NS), "1")
        bad = tl.run(cli + ["--item", "990501", "--geohash", "ab!"], check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("INVALID_ARGUMENT", bad.stderr)
        self.assertIn("items[0].geohash", bad.stderr)
        self.assertEqual(self.redis("EXISTS", "%s:item:990501" % NS), "0")

    def test_new_item_reaches_channels(self):
        # A new item with the features of an existing one (its author, city
        # and geohash), created now.
        model = self.items[min(self.items)]
        author, category, gh, city = int(model[1]), int(model[2]), model[5], int(model[6])
        new_id = max(self.items) + 1000
        resp = self.put(self.item(new_id, author_id=author, category=category, tags=[3, 4],
                                  geohash=gh, city=city, media_type=2, duration_s=30.5))
        self.assertEqual(resp.written, 1)
        self.assertGreaterEqual(resp.revision, 1)
        self.assertEqual(self.redis("EXISTS", "%s:item:%d" % (NS, new_id)), "1")
        # Lists of the current generation.
        self.assertNotEqual(self.redis(
            "ZSCORE", "%s:authors@%s:items:%d" % (NS, self.gen("authors"), author), new_id), "")
        self.assertEqual(self.redis(
            "ZSCORE", "%s:new@%s:impressions" % (NS, self.gen("new")), new_id), "0")
        user = self.users[0]
        poll(lambda: new_id in self.recall("new", user), "new channel recalls the item")
        poll(lambda: new_id in self.recall("geo", user, geohash=gh), "geo channel")
        poll(lambda: new_id in self.recall("city", user, city=city), "city channel")
        # two_tower: users whose vectors are near the item's cold-start vector
        # have it in their top 20 (of 201 items).
        def near_users():
            return [u for u in self.users[:100] if new_id in self.recall("two_tower", u, 20)]
        near = poll(near_users, "two_tower recalls the new item for some user")
        self.assertLess(len(near), 100, "the item is not near every user")

        # A change of city moves the item between city lists.
        other_city = city + 1
        self.put(self.item(new_id, author_id=author, category=category, geohash=gh,
                           city=other_city))
        city_gen = self.gen("city")
        self.assertEqual(self.redis(
            "ZSCORE", "%s:city@%s:%d" % (NS, city_gen, city), new_id), "")
        self.assertNotEqual(self.redis(
            "ZSCORE", "%s:city@%s:%d" % (NS, city_gen, other_city), new_id), "")
        poll(lambda: new_id not in self.recall("city", user, city=city),
             "the item leaves its old city")

    def rank_attrs(self, user, item_id):
        call = self.channel("rank").unary_unary(
            "/cascade.v1.Rank/Score",
            request_serializer=self.pb.rank.RankRequest.SerializeToString,
            response_deserializer=self.pb.rank.RankResponse.FromString)
        req = self.pb.rank.RankRequest(user=self.pb.common.UserContext(user_id=user),
                                       candidates=[self.pb.common.Candidate(item_id=item_id)])
        return call(req, timeout=TIMEOUT_S).candidates[0].attrs

    def rank_metric(self, name):
        url = "http://127.0.0.1:%d/metrics" % (self.stack.ports["rank"] + tl.METRICS_OFFSET)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return 0.0

    def test_changed_item_reread_by_rank(self):
        ids = sorted(self.items)
        item_id = ids[len(ids) // 2]
        row = self.items[item_id]
        author, category = int(row[1]), int(row[2])
        user = self.users[1]
        poll(lambda: self.rank_metric("cascade_rank_item_cache_tracking") == 1,
             "rank tracks item record changes")
        self.assertEqual(self.rank_attrs(user, item_id).category, category)
        hits = self.rank_metric("cascade_rank_item_cache_hits_total")
        self.assertEqual(self.rank_attrs(user, item_id).category, category)
        self.assertEqual(self.rank_metric("cascade_rank_item_cache_hits_total"), hits + 1)
        seen = self.rank_metric("cascade_rank_item_cache_invalidations_total")
        new_category = category + 100
        self.put(self.item(item_id, author_id=author, category=new_category, geohash=row[5],
                           city=int(row[6]), media_type=int(row[7])))
        poll(lambda: self.rank_metric("cascade_rank_item_cache_invalidations_total") > seen,
             "rank told of the change")
        self.assertEqual(self.rank_attrs(user, item_id).category, new_category)

    def index_ids(self, version):
        """The item ids of a two-tower version's item index (the `ids`
        tensor of <version>.items.safetensors, u64 little-endian)."""
        with open(os.path.join(self.stack.model_dir, version + ".items.safetensors"), "rb") as f:
            blob = f.read()
        n = struct.unpack("<Q", blob[:8])[0]
        start, end = json.loads(blob[8:8 + n])["ids"]["data_offsets"]
        raw = blob[8 + n + start:8 + n + end]
        return set(struct.unpack("<%dQ" % (len(raw) // 8), raw))

    def test_nightly_build_keeps_online_items(self):
        # An item put online (no row in items.tsv), then the nightly jobs:
        # lists and authors publish new generations from the data, and the
        # two-tower training indexes the data's items. The build exports
        # {ns}:items:online into DATA/items.online.tsv first, so the item is
        # in all of them as if it were in items.tsv.
        model = self.items[max(self.items)]
        author, category, gh, city = int(model[1]), int(model[2]), model[5], int(model[6])
        new_id = max(self.items) + 5000
        # Created before the data's newest event (the build's as_of: the lists
        # hold items published by then), as an item put during the day is
        # before tonight's last Feedback.
        with open(os.path.join(self.world, "events.tsv")) as f:
            next(f)
            as_of = max(int(l.split("\t", 1)[0]) for l in f)
        self.put(self.item(new_id, author_id=author, category=category, tags=[5], geohash=gh,
                           city=city, media_type=1, created_at_s=as_of - 60))
        before = dict((f, self.gen(f)) for f in ("new", "geo", "city", "authors"))
        redis = "127.0.0.1:%d" % self.stack.redis_port
        for job in ("lists", "authors"):
            res = tl.run([tl.bin_path("cascade-build"), job, "--data", self.world,
                          "--redis", redis])
            self.assertRegex(res.stderr, r"data: \d+ items added online exported")
        with open(os.path.join(self.world, "items.online.tsv")) as f:
            rows = [l.rstrip("\n").split("\t") for l in f][1:]
        row = [r for r in rows if r[0] == str(new_id)]
        self.assertEqual(len(row), 1, rows)
        self.assertEqual(row[0], [str(new_id), str(author), str(category), "5", str(as_of - 60),
                                  gh, str(city), "1", "0"])
        gens = dict((f, self.gen(f)) for f in before)
        for family in before:
            self.assertNotEqual(gens[family], before[family], family + ": no new generation")
        precision = int(self.redis("HGET", "%s:meta" % NS, "geo_precision"))
        for key in ("%s:new@%s" % (NS, gens["new"]),
                    "%s:geo@%s:%s" % (NS, gens["geo"], gh[:precision]),
                    "%s:city@%s:%d" % (NS, gens["city"], city),
                    "%s:authors@%s:items:%d" % (NS, gens["authors"], author)):
            self.assertNotEqual(self.redis("ZSCORE", key, new_id), "", key)
        # The two-tower training reads the same data: the new version's item
        # index holds the item.
        tl.run([tl.bin_path("cascade-build"), "train-two-tower", "--data", self.world,
                "--model-dir", self.stack.model_dir, "--quiet", "--force"])
        with open(os.path.join(self.stack.model_dir, "two-tower.latest")) as f:
            version = f.read().strip()
        self.assertIn(new_id, self.index_ids(version))
        self.assertIn(max(self.items), self.index_ids(version))


if __name__ == "__main__":
    unittest.main()
