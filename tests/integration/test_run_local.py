"""scripts/run-local.sh --data DIR, end to end, on data the test writes itself.

For each layout the script detects (ml-latest-small, ml-100k, Cascade TSV) a
small data set (30 users x 40 movies, timestamps increasing through the file)
is written to a temp dir; run-local.sh is run on it with a free --port-base, a
temp --data-dir and the binaries of this build (--bin-dir, which skips the
dependency install and the build). The test checks that

- it exits 0 although most trainers refuse such tiny positive-only data (exit 3);
- it prints recommendations for the first three users of that data's log,
  each a list of movies of the data that the user has not rated (the Filter
  drops consumed items);
- the input directory is left exactly as it was (nothing written into it);
- the stack it leaves running answers, and stops cleanly (stack.sh stop).

And the error cases: a directory with an incomplete or unknown layout, or
no directory at all, is refused with a message naming the expected files, a
non-zero exit, and nothing started (the --data-dir is not even created); so
is a --data-dir inside DIR; a malformed TSV stops the stack it started.
Every stack is stopped even on failure."""

import hashlib
import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cascade_testlib as tl  # noqa: E402

RUN_LOCAL = os.path.join(tl.SOURCE_DIR, "scripts", "run-local.sh")
N_USERS = 30
N_MOVIES = 40
PER_USER = 12
GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Romance"]


def make_ratings(seed):
    """(user, movie, rating, ts) tuples, ts strictly increasing. User and movie
    ids are sparse and out of order, so the first users of the log are not
    simply the smallest ids."""
    rng = random.Random(seed)
    users = rng.sample(range(2, 900), N_USERS)
    movies = rng.sample(range(3, 2000), N_MOVIES)
    pairs = [(u, m) for u in users for m in rng.sample(movies, PER_USER)]
    rng.shuffle(pairs)
    ts = 978300000
    out = []
    for u, m in pairs:
        ts += rng.randrange(1, 4000)
        out.append((u, m, rng.choice([1.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]), ts))
    return movies, out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def write_latest_small(d, movies, ratings):
    write(os.path.join(d, "movies.csv"), "movieId,title,genres\n" + "".join(
        '%d,"Film %d, The (1999)",%s|%s\n' % (m, m, GENRES[i % 5], GENRES[(i // 5) % 5])
        for i, m in enumerate(movies)))
    write(os.path.join(d, "ratings.csv"), "userId,movieId,rating,timestamp\n" + "".join(
        "%d,%d,%.1f,%d\n" % r for r in ratings))


def write_100k(d, movies, ratings):
    items = []
    for i, m in enumerate(movies):
        flags = ["0"] * 19
        flags[1 + i % 18] = "1"
        items.append("%d|Film %d (1997)|01-Jan-1997||http://x/%d|%s\n" % (m, m, m, "|".join(flags)))
    write(os.path.join(d, "u.item"), "".join(items))
    users = sorted(set(r[0] for r in ratings))
    write(os.path.join(d, "u.user"), "".join(
        "%d|%d|%s|other|%05d\n" % (u, 20 + u % 40, "MF"[u % 2], 10000 + u) for u in users))
    write(os.path.join(d, "u.data"), "".join(
        "%d\t%d\t%d\t%d\n" % (u, m, max(1, int(r)), ts) for u, m, r, ts in ratings))


def write_tsv(d, movies, ratings):
    users = sorted(set(r[0] for r in ratings))
    write(os.path.join(d, "users.tsv"), "user_id\tage\tgender\tcity\tgeohash\tinterests\n" + "".join(
        "%d\t30\t1\t0\t\t\n" % u for u in users))
    write(os.path.join(d, "items.tsv"),
          "item_id\tauthor_id\tcategory\ttags\tcreated_at\tgeohash\tcity\tmedia_type\tduration_s\n"
          + "".join("%d\t0\t%d\t\t978000000\t\t0\t2\t0\n" % (m, 1 + i % 18)
                    for i, m in enumerate(movies)))
    lines = []
    for u, m, r, ts in ratings:
        lines.append("%d\t%d\t%d\timpression\t0\n" % (ts, u, m))
        lines.append("%d\t%d\t%d\tclick\t0\n" % (ts, u, m))
        if r >= 4:
            lines.append("%d\t%d\t%d\tlike\t0\n" % (ts, u, m))
    write(os.path.join(d, "events.tsv"), "ts\tuser_id\titem_id\ttype\tvalue\n" + "".join(lines))


def snapshot(d):
    """Every file of d with its size, mtime and content hash."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = (st.st_size, st.st_mtime_ns,
                                              hashlib.sha256(fh.read()).hexdigest())
    return out


def parse_recommendations(stdout):
    """{user: [item ids]} from cascade-cli recommend's tables in the output."""
    recs, user = {}, None
    for line in stdout.splitlines():
        m = re.match(r"^user (\S+)  request \S+  (\d+) items?$", line)
        if m:
            user = m.group(1)
            recs[user] = []
            continue
        m = re.match(r"^\s+\d+\s+(\d+)\s+-?[0-9.]+\s", line)
        if user is not None and m:
            recs[user].append(int(m.group(1)))
        elif not line.strip():
            user = None
    return recs


class RunLocalDataTest(unittest.TestCase):
    tmp = None
    stacks = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tl.TempDir("cascade-runlocal-")
        cls.stacks = []

    @classmethod
    def tearDownClass(cls):
        for base, data_dir in cls.stacks:
            res = tl.run(["bash", tl.STACK_SH, "stop", "--port-base", str(base),
                          "--data-dir", data_dir], timeout=120, check=False)
            if res.returncode != 0:
                tl.log("stack stop: exit %d\n%s%s" % (res.returncode, res.stdout, res.stderr))
        cls.tmp.cleanup()

    def run_local(self, data, data_dir, base=None, timeout=300):
        cmd = ["bash", RUN_LOCAL, "--data", data, "--data-dir", data_dir,
               "--bin-dir", tl.BIN_DIR]
        if base is not None:
            cmd += ["--port-base", str(base)]
        return tl.run(cmd, timeout=timeout, check=False)

    def check_layout(self, name, writer, seed):
        src = os.path.join(self.tmp.path, name + "-in")
        os.makedirs(src)
        movies, ratings = make_ratings(seed)
        writer(src, movies, ratings)
        before = snapshot(src)
        data_dir = os.path.join(self.tmp.path, name + "-run")
        base = tl.free_port_base()
        type(self).stacks.append((base, data_dir))
        res = self.run_local(src, data_dir, base)
        self.assertEqual(res.returncode, 0, "run-local.sh failed:\n%s\n%s"
                         % (res.stdout[-6000:], res.stderr[-4000:]))
        # Nothing written into the input directory.
        self.assertEqual(snapshot(src), before)

        first_users = []
        for u, _, _, _ in ratings:
            if str(u) not in first_users:
                first_users.append(str(u))
        first_users = first_users[:3]
        rated = {}
        for u, m, _, _ in ratings:
            rated.setdefault(str(u), set()).add(m)
        recs = parse_recommendations(res.stdout)
        self.assertEqual(list(recs.keys()), first_users, res.stdout[-4000:])
        for user, items in recs.items():
            self.assertEqual(len(items), 10, "user %s: %s" % (user, items))
            self.assertEqual(len(set(items)), 10, "user %s: duplicates in %s" % (user, items))
            self.assertTrue(set(items) <= set(movies), "user %s: %s" % (user, items))
            self.assertFalse(set(items) & rated[user],
                             "user %s was served movies already rated: %s"
                             % (user, sorted(set(items) & rated[user])))
        # The trainers that the data does not support were reported, not fatal.
        self.assertIn("model not published (exit 3", res.stdout)
        # The stack it leaves up answers, and the printed stop command is right.
        self.assertIn("scripts/stack.sh stop --port-base %d --data-dir %s" % (base, data_dir),
                      res.stdout)
        health = tl.run([tl.bin_path("cascade-cli"), "health", "--addr", "127.0.0.1:%d" % base],
                        timeout=60, check=False)
        self.assertEqual(health.returncode, 0, health.stdout + health.stderr)
        stop = tl.run(["bash", tl.STACK_SH, "stop", "--port-base", str(base),
                       "--data-dir", data_dir], timeout=120, check=False)
        type(self).stacks.remove((base, data_dir))
        self.assertEqual(stop.returncode, 0, stop.stdout + stop.stderr)
        return res

    def test_latest_small_layout(self):
        res = self.check_layout("latest-small", write_latest_small, 11)
        self.assertIn("import MovieLens (latest-small)", res.stdout)

    def test_100k_layout(self):
        res = self.check_layout("100k", write_100k, 12)
        self.assertIn("import MovieLens (100k)", res.stdout)

    def test_tsv_layout(self):
        res = self.check_layout("tsv", write_tsv, 13)
        self.assertIn("Cascade TSV files in", res.stdout)

    def test_bad_directories(self):
        partial = os.path.join(self.tmp.path, "partial")
        os.makedirs(partial)
        write(os.path.join(partial, "u.data"), "1\t1\t5\t881250949\n")
        write(os.path.join(partial, "ratings.txt"), "")
        empty = os.path.join(self.tmp.path, "empty")
        os.makedirs(empty)
        missing = os.path.join(self.tmp.path, "no-such-dir")
        for src, found in ((partial, "found: u.data"), (empty, "found: none")):
            data_dir = os.path.join(self.tmp.path, "bad-run-" + os.path.basename(src))
            res = self.run_local(src, data_dir, tl.free_port_base(), timeout=60)
            self.assertNotEqual(res.returncode, 0)
            for expected in ("ratings.csv and movies.csv", "u.data, u.item and u.user",
                             "users.tsv, items.tsv and events.tsv", found):
                self.assertIn(expected, res.stderr)
            self.assertFalse(os.path.exists(data_dir), "something was started in " + data_dir)
            self.assertNotIn("== 3/6", res.stdout)
        data_dir = os.path.join(self.tmp.path, "bad-run-missing")
        res = self.run_local(missing, data_dir, tl.free_port_base(), timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("not a directory", res.stderr)
        self.assertFalse(os.path.exists(data_dir))
        # The data dir inside DIR would write into DIR: refused.
        ml = os.path.join(self.tmp.path, "ml-ro")
        os.makedirs(ml)
        write_latest_small(ml, *make_ratings(14))
        before = snapshot(ml)
        res = self.run_local(ml, os.path.join(ml, "run"), tl.free_port_base(), timeout=60)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("inside --data", res.stderr)
        self.assertEqual(snapshot(ml), before)

    def test_malformed_tsv_stops_the_stack(self):
        """A TSV directory of the right layout with a bad line: the load fails
        after the stack started; the script says where, exits non-zero and
        stops the stack again."""
        src = os.path.join(self.tmp.path, "bad-tsv")
        os.makedirs(src)
        write_tsv(src, *make_ratings(15))
        with open(os.path.join(src, "events.tsv"), "a") as f:
            f.write("978400000\t5\n")
        data_dir = os.path.join(self.tmp.path, "bad-tsv-run")
        base = tl.free_port_base()
        type(self).stacks.append((base, data_dir))
        res = self.run_local(src, data_dir, base)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("events.tsv:", res.stderr)
        self.assertIn("stopping the stack", res.stderr)
        # stack.sh's wrapper writes <name>.exit once a process has ended.
        for name in ("redis", "recall", "filter", "prerank", "rank", "rerank", "orchestrator"):
            self.assertTrue(os.path.exists(os.path.join(data_dir, name + ".exit")),
                            name + " is still running")
        type(self).stacks.remove((base, data_dir))


if __name__ == "__main__":
    unittest.main(verbosity=2)
