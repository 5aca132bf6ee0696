#!/usr/bin/env python3
"""faiss side of the vector index benchmark (scripts/bench/vindex_vs_faiss.sh).

Reads base.npy, queries.npy, exact.npy and params.txt written by
cascade-bench-vindex --out-dir DIR and prints table rows in its format for
faiss IndexFlatIP (exact) and IndexIVFFlat with the same nlist, nprobe,
k-means iterations and training sample size (and each --sweep nprobe), on
one thread: build time, recall@k against the exact ids, p50/p99 wall and CPU
latency of one query per call and the throughput of all queries in one call.
Usage: vindex_faiss.py DIR
"""
import sys
import time

import numpy as np

try:
    import faiss
except ImportError:
    sys.exit("vindex_faiss.py: python3-faiss is not installed (apt-get install python3-faiss)")


def read_params(path):
    with open(path) as f:
        pairs = dict(line.split() for line in f if line.strip())
    sweep = [int(v) for v in pairs.pop("sweep", "").split(",") if v]
    params = {k: int(v) for k, v in pairs.items()}
    params["sweep"] = sweep
    return params


def recall(found, exact):
    k = exact.shape[1]
    hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact))
    return hits / (k * len(exact))


def percentile(v, p):
    v = sorted(v)
    return v[min(len(v) * p // 100, len(v) - 1)]


def measure(index, xq, k):
    """Wall and CPU (this thread) latency percentiles in µs of one query per
    call, then the ids and QPS of one batch call."""
    wall, cpu = [], []
    for i in range(len(xq)):
        q = xq[i:i + 1]
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        index.search(q, k)
        cpu.append((time.thread_time_ns() - c0) / 1000)
        wall.append((time.perf_counter_ns() - w0) / 1000)
    t0 = time.perf_counter()
    _, ids = index.search(xq, k)
    qps = len(xq) / (time.perf_counter() - t0)
    lat = [percentile(wall, 50), percentile(wall, 99), percentile(cpu, 50), percentile(cpu, 99)]
    return lat, ids, qps


def row(name, nlist, nprobe, build_s, rec, lat, qps):
    cols = " | ".join(f"{v:.0f}" for v in lat)
    print(f"| {name} | {nlist} | {nprobe} | {build_s:.2f} | {rec:.4f} | {cols} | {qps:.0f} |",
          flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    xb = np.ascontiguousarray(np.load(f"{d}/base.npy"), dtype=np.float32)
    xq = np.ascontiguousarray(np.load(f"{d}/queries.npy"), dtype=np.float32)
    exact = np.load(f"{d}/exact.npy").astype(np.int64)
    p = read_params(f"{d}/params.txt")
    k, dim = p["k"], xb.shape[1]
    faiss.omp_set_num_threads(1)

    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    build_s = time.perf_counter() - t0
    lat, ids, qps = measure(flat, xq, k)
    row("faiss IndexFlatIP", 1, 0, build_s, recall(ids, exact), lat, qps)

    rng = np.random.default_rng(p["seed"])
    train = xb[rng.choice(len(xb), size=min(p["train_sample"], len(xb)), replace=False)]
    t0 = time.perf_counter()
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, p["nlist"], faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = p["kmeans_iters"]
    ivf.cp.seed = p["seed"]
    ivf.cp.spherical = True  # unit vectors, like the cascade index's cosine k-means
    ivf.train(train)
    ivf.add(xb)
    build_s = time.perf_counter() - t0
    for i, nprobe in enumerate([p["nprobe"]] + p["sweep"]):
        ivf.nprobe = nprobe
        lat, ids, qps = measure(ivf, xq, k)
        name = "faiss IndexIVFFlat" + (" (sweep)" if i else "")
        row(name, p["nlist"], nprobe, build_s, recall(ids, exact), lat, qps)


if __name__ == "__main__":
    main()
