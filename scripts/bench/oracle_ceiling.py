#!/usr/bin/python3
"""How close to the oracle can a click model get on a generated world?

Reads a world written by `cascade-datagen --truth-terms` (users/items/events.tsv
and truth.tsv with the six terms of each click logit) and reports, on the
impressions train-mmoe holds out (after --warmup-frac, the last --holdout-frac):

  - the oracle AUC (the true p_click);
  - the AUC when one term of the logit is dropped (what each term is worth);
  - the AUC when one term is replaced by an estimate a model could make from
    point-in-time history (every other term kept exact): the user's category
    preference from the user's own exposure and clicks (the rank feature
    user_cat_imp_share), item quality from the smoothed item CTR, user bias
    from the smoothed user CTR.

Usage: scripts/bench/oracle_ceiling.py --data W [--warmup-frac 0.3] [--holdout-frac 0.1]
See docs/mmoe.md §5.
"""
import argparse
import collections
import math
import sys

import numpy as np

INTERCEPT = -3.4
TERMS = ["theta", "quality", "user_bias", "freshness", "same_city", "circle_favourite"]


def auc(score, label):
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    # average ranks of ties
    s_sorted = score[order]
    i = 0
    while i < len(s_sorted):
        j = i
        while j + 1 < len(s_sorted) and s_sorted[j + 1] == s_sorted[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2.0
        i = j + 1
    pos = label.sum()
    neg = len(label) - pos
    return (ranks[label == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)


def read_truth(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[4:] != TERMS:
            sys.exit(f"{path}: no logit terms; regenerate the world with cascade-datagen --truth-terms")
        rows = [line.rstrip("\n").split("\t") for line in f]
    keys = [(r[0], r[1], r[2]) for r in rows]
    terms = np.array([[float(x) for x in r[4:]] for r in rows])
    return keys, terms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--warmup-frac", type=float, default=0.3)
    ap.add_argument("--holdout-frac", type=float, default=0.1)
    a = ap.parse_args()

    declared = {}
    with open(f"{a.data}/users.tsv") as f:
        f.readline()
        for line in f:
            x = line.rstrip("\n").split("\t")
            declared[x[0]] = {int(c) for c in x[5].split(",") if c} if len(x) > 5 else set()
    category = {}
    with open(f"{a.data}/items.tsv") as f:
        f.readline()
        for line in f:
            x = line.split("\t")
            category[x[0]] = int(x[2])
    keys, terms = read_truth(f"{a.data}/truth.tsv")
    index = {k: i for i, k in enumerate(keys)}

    # Replay the log: point-in-time estimates before each impression.
    n = len(keys)
    label = np.zeros(n)
    est = np.zeros((n, 3))  # theta term, quality, user bias
    imp = collections.defaultdict(lambda: collections.defaultdict(float))
    clk = collections.defaultdict(lambda: collections.defaultdict(float))
    u_imp, u_clk = collections.Counter(), collections.Counter()
    i_imp, i_clk = collections.Counter(), collections.Counter()
    last = {}
    with open(f"{a.data}/events.tsv") as f:
        f.readline()
        for line in f:
            ts, user, item, kind = line.rstrip("\n").split("\t")[:4]
            c = category[item]
            if kind == "impression":
                k = index[(ts, user, item)]
                mine = imp[user][c] + 2 * clk[user][c] + 0.3
                total = sum(imp[user].values()) + 2 * sum(clk[user].values()) + 6.0
                interests = declared.get(user, set())
                mine += 16.0 if c in interests else 0.0
                total += 16.0 * len(interests)
                share = mine / total
                est[k, 0] = 0.65 * math.log(20 * share + 0.05)
                ictr = (i_clk[item] + 0.1 * 20) / (i_imp[item] + 20)
                uctr = (u_clk[user] + 0.1 * 20) / (u_imp[user] + 20)
                est[k, 1] = math.log(ictr / (1 - ictr)) - math.log(0.1 / 0.9)
                est[k, 2] = 0.5 * (math.log(uctr / (1 - uctr)) - math.log(0.1 / 0.9))
                imp[user][c] += 1
                u_imp[user] += 1
                i_imp[item] += 1
                last[(user, item)] = k
            elif kind == "click":
                clk[user][c] += 1
                u_clk[user] += 1
                i_clk[item] += 1
                if (user, item) in last:
                    label[last[(user, item)]] = 1

    warm = int(a.warmup_frac * n)
    examples = n - warm
    held = slice(warm + examples - int(a.holdout_frac * examples), n)
    y = label[held]
    z = INTERCEPT + terms.sum(axis=1)
    print(f"held-out impressions {len(y)}, clicks {int(y.sum())}")
    print(f"oracle AUC {auc(z[held], y):.4f}")
    for t, name in enumerate(TERMS):
        print(f"  without {name:<17} {auc((z - terms[:, t])[held], y):.4f}")
    for t, name, what in [(0, "theta", "user's exposure + 2·clicks share of the category "
                                       "(declared interests as prior)"),
                          (1, "quality", "smoothed item CTR"),
                          (2, "user_bias", "smoothed user CTR")]:
        s = z - terms[:, t] + est[:, t]
        print(f"  {name} estimated from the {what}: {auc(s[held], y):.4f}")
    s = z - terms[:, :3].sum(axis=1) + est.sum(axis=1)
    print(f"  theta, quality and user_bias estimated together: {auc(s[held], y):.4f}")


if __name__ == "__main__":
    main()
