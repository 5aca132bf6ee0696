#!/usr/bin/env python3
"""Fault-suite figures: the scenarios of tests/integration/test_faults.py run
longer (more calls per phase, a longer rank stall), printed as one markdown
table: calls, client errors, degraded share, p99 and max latency, recovery
time (from the restart or SIGCONT to the first non-degraded answer).

    scripts/fault_suite.py [--phase-calls N] [--stall-s S] [--bin-dir DIR]

Needs a build (cmake --build build) and python grpcio + grpcio-tools. Starts
its own redis-server and services on free ports; see docs/orchestrator.md
("Fault suite")."""

import argparse
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase-calls", type=int, default=400,
                    help="calls each load phase waits for (default 400)")
    ap.add_argument("--stall-s", type=float, default=10.0,
                    help="seconds rank stays SIGSTOPped (default 10)")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"))
    args = ap.parse_args()
    if args.phase_calls < 1 or args.stall_s <= 0:
        ap.error("--phase-calls must be >= 1 and --stall-s > 0")
    os.environ["CASCADE_BIN_DIR"] = os.path.abspath(args.bin_dir)
    os.environ.setdefault("CASCADE_SOURCE_DIR", REPO)
    sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
    import test_faults as tf  # noqa: E402 (needs the environment above)

    rows = []
    bench = tf.FaultBench(users=2000, items=600, events=60000)
    try:
        out = bench.same_user_race(bench.spare_users[0])
        sizes = [len(o) if isinstance(o, list) else 0 for o in out]
        ids = [i for o in out if isinstance(o, list) for i in o]
        race_errors = sum(1 for o in out if not isinstance(o, list))
        rows.append(("8 concurrent Recommend, one user", "answer sizes %s, %d repeated items"
                     % (sizes, len(ids) - len(set(ids))), race_errors))
        records, codes = bench.hostile(args.phase_calls)
        rows.append(("hostile client (20 KB ids, bad bytes) + 4 normal",
                     "hostile calls %s" % codes, tf.summarize(records)))
        _, records, rec = bench.kill_recall(args.phase_calls)
        rows.append(("SIGKILL recall, restart", "", tf.summarize(records, rec)))
        _, records, rec = bench.stall_rank(args.stall_s, args.phase_calls)
        rows.append(("SIGSTOP rank %.0f s, 500 ms deadline" % args.stall_s, "",
                     tf.summarize(records, rec)))
        status, records, rec = bench.terminate_stage("prerank", args.phase_calls)
        rows.append(("SIGTERM prerank, restart", "exit status %d" % status,
                     tf.summarize(records, rec)))
    finally:
        bench.close()

    print("| scenario | calls | client errors | degraded share | p99 ms | max ms "
          "| recovery s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, note, s in rows:
        if isinstance(s, int):
            print("| %s | 8 | %d | - | - | - | - | %s |" % (name, s, note))
            continue
        errs = "%d %s" % (s["errors"], ",".join(s["error_codes"])) if s["errors"] else "0"
        rec = "%.2f" % s["recovery_s"] if s["recovery_s"] is not None else "-"
        print("| %s | %d | %s | %.1f%% | %.0f | %.0f | %s | %s |"
              % (name, s["calls"], errs, 100.0 * s["degraded_share"], s["p99_ms"],
                 s["max_ms"], rec, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
