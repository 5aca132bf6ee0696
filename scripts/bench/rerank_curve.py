#!/usr/bin/python3
"""Re-rank diversity / accuracy curve on a stack kept by `cascade-eval --served
--keep-stack`: for each point (a set of config overrides, e.g.
rerank.method=dpp,rerank.dpp.theta=0.9) the stack is restarted with them
(scripts/stack.sh stop/start --set ...), the users' exposure filters, recall
caches and hard-negative logs are cleared (as cascade-eval --explore-cost
does, so every point starts from the same state), and every test user gets
one Recommend (count K, request_time_s = the last train event). Per point:
nDCG@K exactly as cascade-eval scores the served row (train items removed,
binary relevance = the user's items in --data but not in --train), and the
lists' intra-list diversity: mean distinct categories, mean category entropy
(bits), mean distinct known authors and mean size of the largest category
per list (top-cat).

Usage: scripts/bench/rerank_curve.py --served-dir DIR --data DIR --port-base N
           [--config FILE] [--bin-dir DIR] [--k 10]
           --point NAME=key=value[,key=value...] [--point ...]
(--served-dir is cascade-eval's: its train/ and stack/ are used.)"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import grpc

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import cascade_testlib as tl  # noqa: E402


def read_events(path):
    """user -> set of items with an event of positive behaviour weight (not an
    impression, dislike or hide_author), and the last timestamp."""
    items, last = {}, 0
    with open(path) as f:
        next(f)
        for line in f:
            ts, user, item, kind = line.rstrip("\n").split("\t")[:4]
            last = max(last, int(ts))
            if kind not in ("impression", "dislike", "hide_author"):
                items.setdefault(user, set()).add(int(item))
    return items, last


def stack(cmd, args, sets):
    argv = ["bash", os.path.join(REPO, "scripts", "stack.sh"), cmd, "--port-base",
            str(args.port_base), "--data-dir", os.path.join(args.served_dir, "stack"),
            "--bin-dir", args.bin_dir, "--config", args.config]
    for s in sets:
        argv += ["--set", s]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def clear_user_state(args):
    cli = ["redis-cli", "-p", str(args.port_base + 9)]
    for _ in range(600):  # Redis answers LOADING while it reads its dump after a restart
        out = subprocess.run(cli + ["ping"], capture_output=True, text=True).stdout
        if out.strip() == "PONG":
            break
        time.sleep(0.1)
    for pattern in ("cascade:expo:*", "cascade:user:*:cache", "cascade:user:*:hardneg"):
        keys = subprocess.run(cli + ["--scan", "--pattern", pattern], check=True,
                              capture_output=True, text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(cli + ["del"] + keys[i:i + 500], check=True, stdout=subprocess.DEVNULL)


def measure(pb, args, users, train, test, as_of):
    stub = pb.recommender_grpc.RecommenderStub(
        grpc.insecure_channel("127.0.0.1:%d" % args.port_base))
    ndcg = cats = entropy = authors = topcat = 0.0
    for user in users:
        req = pb.recommender.RecommendRequest(count=args.k)
        req.user.user_id = user
        req.user.request_time_s = as_of
        resp = stub.Recommend(req, timeout=30)
        seen = train.get(user, set())
        lst = [it for it in resp.items if it.item_id not in seen][:args.k]
        rel = test[user]
        dcg = sum(1 / math.log2(r + 2) for r, it in enumerate(lst) if it.item_id in rel)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(rel), args.k)))
        ndcg += dcg / idcg
        count = {}
        for it in lst:
            count[it.attrs.category] = count.get(it.attrs.category, 0) + 1
        cats += len(count)
        topcat += max(count.values()) if count else 0
        entropy += -sum(c / len(lst) * math.log2(c / len(lst)) for c in count.values()) \
            if lst else 0
        authors += len({it.attrs.author_id for it in lst if it.attrs.author_id})
    n = len(users)
    return ndcg / n, cats / n, entropy / n, authors / n, topcat / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--served-dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--port-base", type=int, required=True)
    ap.add_argument("--config", default=os.path.join(REPO, "config", "cascade.json"))
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--point", action="append", required=True)
    args = ap.parse_args()
    full, _ = read_events(os.path.join(args.data, "events.tsv"))
    train, as_of = read_events(os.path.join(args.served_dir, "train", "events.tsv"))
    test = {u: its - train.get(u, set()) for u, its in full.items()}
    users = sorted(u for u, its in test.items() if its)
    pb = tl.generate_stubs(tempfile.mkdtemp(prefix="rerank-curve-"))
    print("%d test users, K = %d" % (len(users), args.k))
    print("%-24s %8s %8s %9s %8s %8s" % ("point", "nDCG@K", "cats", "cat-ent", "authors",
                                          "top-cat"))
    for point in args.point:
        name, _, sets = point.partition("=")
        sets = [s for s in sets.split(",") if s]
        stack("stop", args, [])
        stack("start", args, sets)
        clear_user_state(args)
        r = measure(pb, args, users, train, test, as_of)
        print("%-24s %8.4f %8.3f %9.3f %8.3f %8.3f" % ((name,) + r), flush=True)
    stack("stop", args, [])


if __name__ == "__main__":
    main()
