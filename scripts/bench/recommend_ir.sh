#!/usr/bin/env bash
# Instructions per Recommend, per process: a load-independent cost figure
# (callgrind counts instructions, so the other users of a shared machine do
# not move it). Starts a private stack on a copy of a built world (a stack data
# dir holding dump.rdb and models/, as scripts/bench/saturation.sh --world
# leaves it), with the chosen services under valgrind --tool=callgrind and
# every deadline of the config multiplied by --slack (valgrind is ~50x slower;
# a degraded answer would measure another path). Sends --warmup Recommend
# calls, zeroes the counters, sends --requests more (closed loop, one client,
# users drawn with a fixed seed, so runs compare), dumps, and prints the
# instructions per call of each process and their sum. Degraded answers are
# counted: they must be 0 for the figures to mean the full path. Also printed:
# Redis commands per Recommend and the server's time for them by command
# (INFO commandstats), and Redis round trips and bytes (each way) per
# Recommend per process (from `ss -ti`: data segments and bytes each
# connection to redis-server sent and received), and the item records
# pre-rank and rank took from their item caches and read from Redis per
# Recommend (their cascade_*_item_cache_* metrics); these three in both modes.
# Usage: scripts/bench/recommend_ir.sh --world DIR [--users N] [--requests N]
#        [--warmup N] [--procs "orchestrator recall filter prerank rank rerank"]
#        [--port-base N] [--slack K] [--bin-dir DIR] [--set PATH=VALUE]... [--out DIR]
#        [--cpu] [--unix]
# --out DIR keeps the callgrind dumps there (callgrind_annotate DIR/<proc>.<pid>.<n>;
# names are not compressed, so each dump reads on its own).
# --cpu: no valgrind; the services run natively, the calls go 4 at a time, and
# the CPU time (user + system, from /proc/<pid>/stat: the kernel's share of
# gRPC and Redis round trips included) of each process and of redis-server is
# printed per Recommend, with the context switches of all its threads (each
# voluntary one a thread that slept and had to be woken), and cascade-load's own
# CPU time and switches (not in the sum). Load-dependent, unlike the
# instruction counts.
# --unix: the stack's inner hops (services to Redis, orchestrator to stages)
# go over Unix sockets (scripts/stack.sh --unix); the load generator still
# calls the orchestrator over TCP, as a gateway would. Redis round trips are
# then not printed (they are read off TCP connections).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
BIN="$REPO/build/bin"
WORLD=""; OUT=""; CPU=0; USERS=5000; REQUESTS=200; WARMUP=20; BASE=45150; SLACK=100
PROCS="orchestrator recall filter prerank rank rerank"; SETS=(); UNIX=()
while [ $# -gt 0 ]; do
  case "$1" in
    --world) WORLD="$2"; shift 2 ;;
    --users) USERS="$2"; shift 2 ;;
    --requests) REQUESTS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --procs) PROCS="$2"; shift 2 ;;
    --port-base) BASE="$2"; shift 2 ;;
    --slack) SLACK="$2"; shift 2 ;;
    --bin-dir) BIN="$2"; shift 2 ;;
    --set) SETS+=(--set "$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --cpu) CPU=1; shift ;;
    --unix) UNIX=(--unix); shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "recommend_ir.sh: unknown option \"$1\" (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$WORLD" ] && [ -f "$WORLD/dump.rdb" ] && [ -d "$WORLD/models" ] ||
  { echo "recommend_ir.sh: --world DIR must be a built stack data dir (dump.rdb, models/)" >&2; exit 2; }
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
  { echo "recommend_ir.sh: valgrind (with callgrind_control) not installed" >&2; exit 1; }
BIN=$(cd "$BIN" && pwd)
[ -x "$BIN/cascade-load" ] || { echo "recommend_ir.sh: $BIN/cascade-load missing; build first" >&2; exit 1; }

DIR=$(mktemp -d /tmp/cascade-ir.XXXXXX)
cleanup() { bash scripts/stack.sh stop --port-base "$BASE" --data-dir "$DIR/data" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
mkdir -p "$DIR/data" "$DIR/bin" "$DIR/cg"
cp "$WORLD/dump.rdb" "$DIR/data/" # the runs change Redis (exposures, cache): start each from the same state
cp -r "$WORLD/models" "$DIR/data/models"
for exe in "$BIN"/cascade-*; do ln -s "$exe" "$DIR/bin/"; done
ALL_PROCS=$PROCS
[ "$CPU" = 0 ] || PROCS=""
for p in $PROCS; do
  rm "$DIR/bin/cascade-$p"
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --compress-strings=no --callgrind-out-file=%s/cg/%s.%%p %s "$@"\n' \
    "$DIR" "$p" "$BIN/cascade-$p" >"$DIR/bin/cascade-$p"
  chmod +x "$DIR/bin/cascade-$p"
done
# The config with every timeout and deadline scaled by SLACK.
/usr/bin/python3 - "$REPO/config/cascade.json" "$DIR/cascade.json" "$SLACK" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
def scale(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("timeout_ms", "deadline_ms", "min_ms") and isinstance(v, int):
                node[k] = v * int(sys.argv[3])
            else:
                scale(v)
    elif isinstance(node, list):
        for v in node:
            scale(v)
scale(cfg)
cfg.setdefault("orchestrator", {}).setdefault("deadline_ms", 2000 * int(sys.argv[3]))
json.dump(cfg, open(sys.argv[2], "w"), indent=1)
EOF
bash scripts/stack.sh start --port-base "$BASE" --data-dir "$DIR/data" --bin-dir "$DIR/bin" \
  --config "$DIR/cascade.json" --timeout 600 ${SETS[@]+"${SETS[@]}"} ${UNIX[@]+"${UNIX[@]}"} >/dev/null

load() { # N SEED
  "$BIN/cascade-load" --insecure --call cascade.v1.Recommender.Recommend -O json --seed "$2" \
    -t 600s -d "{\"user\":{\"userId\":\"u{{randomInt 1 $((USERS + 1))}}\"},\"count\":20}" \
    -n "$1" -c 1 127.0.0.1:"$BASE"
}
load "$WARMUP" 1 >/dev/null
# Redis round trips per process: the kernel's count of data segments each
# connection to redis-server sent (one per pipeline flush: a write of up to
# 64 KB is one segment on loopback), and bytes each way, per connection,
# summed per process below. Connections opened during the run count from 0.
redis_conns() {
  ss -HtinpO "dport = :$((BASE + 9))" 2>/dev/null | /usr/bin/python3 -c '
import re, sys
for line in sys.stdin:
    pid = re.search(r"pid=(\d+),", line)
    port = re.search(r"127\.0\.0\.1:(\d+)\s", line)
    got = [re.search(r"\b%s:(\d+)" % f, line) for f in ("data_segs_out", "bytes_sent", "bytes_received")]
    if pid and port:
        print(pid.group(1), port.group(1), *[g.group(1) if g else 0 for g in got])
'
}
PIDS=""
for p in orchestrator recall filter prerank rank rerank; do PIDS="$PIDS $p=$(cat "$DIR/data/$p.pid")"; done
redis_trips() { # BEFORE AFTER N: round trips and bytes per Recommend, per process
  [ ${#UNIX[@]} = 0 ] || { echo "redis round trips: not counted with --unix (Unix sockets)"; return; }
  /usr/bin/python3 - "$1" "$2" "$3" $PIDS <<'PY'
import sys
def read(path):
    return {(f[0], f[1]): [int(x) for x in f[2:]] for f in (l.split() for l in open(path)) if len(f) == 5}
before, after, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
names = dict(a.split("=")[::-1] for a in sys.argv[4:])
per = {}
for k, v in after.items():
    b = before.get(k, [0, 0, 0])
    acc = per.setdefault(names.get(k[0], "pid " + k[0]), [0, 0, 0])
    for i in range(3):
        acc[i] += v[i] - b[i]
tot = [sum(v[i] for v in per.values()) for i in range(3)]
print("redis round trips per Recommend: %.1f (%s); bytes to redis %.0f, from redis %.0f" % (
    tot[0] / n, ", ".join("%s %.1f" % (p, v[0] / n) for p, v in sorted(per.items()) if v[0]),
    tot[1] / n, tot[2] / n))
print("redis bytes per Recommend, to / from, by process: %s" % ", ".join(
    "%s %.0f / %.0f" % (p, v[1] / n, v[2] / n) for p, v in sorted(per.items()) if v[0]))
PY
}
# Redis: commands per Recommend (every process's), by command, and the
# server's own time for them (wall-clock microseconds: load-dependent).
redis_commands() { # INFO-COMMANDSTATS-FILE N
  /usr/bin/python3 - "$1" "$2" <<'PY'
import re, sys
n = int(sys.argv[2])
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", line)
    if m and m.group(1) not in ("config", "info"):
        rows.append((int(m.group(2)), int(m.group(3)), m.group(1)))
rows.sort(reverse=True)
print("redis: %.1f commands, %.0f us per Recommend (%s)" % (
    sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n,
    ", ".join("%s %.1f" % (r[2], r[0] / n) for r in rows[:14])))
print("redis: server time by command, us per Recommend: %s" % (
    ", ".join("%s %.0f" % (r[2], r[1] / n) for r in sorted(rows, key=lambda r: -r[1])[:14])))
PY
}
# The item caches' counters of pre-rank (port base + 3) and rank (base + 4),
# from their /metrics (port + 1000); absent series read 0.
cache_counters() {
  for p in prerank:3 rank:4; do
    curl -s "http://127.0.0.1:$((BASE + ${p#*:} + 1000))/metrics" |
      awk -v s="${p%:*}" '$1 ~ "^cascade_" s "_item_cache_(hits|misses|invalidations)_total$" { print $1, $2 }'
  done
}
item_caches() { # BEFORE AFTER N
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
def read(path):
    return {l.split()[0]: float(l.split()[1]) for l in open(path) if len(l.split()) == 2}
before, after, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
def per(name):
    return (after.get(name, 0) - before.get(name, 0)) / n
print("item caches per Recommend: " + "; ".join(
    "%s %.1f hits, %.1f misses, %.1f invalidated" % (
        s, per("cascade_%s_item_cache_hits_total" % s), per("cascade_%s_item_cache_misses_total" % s),
        per("cascade_%s_item_cache_invalidations_total" % s)) for s in ("prerank", "rank")))
PY
}
if [ "$CPU" = 1 ]; then
  # utime + stime in clock ticks of every process, redis-server included.
  # And the context switches of all their threads (voluntary + involuntary:
  # each voluntary one is a thread going to sleep, to be woken by another).
  ticks() {
    for p in $ALL_PROCS redis; do
      pid=$(cat "$DIR/data/$p.pid")
      echo "$p $(awk '{ print $14 + $15 }' "/proc/$pid/stat") $(cat /proc/"$pid"/task/*/status 2>/dev/null |
        awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }')"
    done
  }
  ticks >"$DIR/before.txt"
  redis_conns >"$DIR/conns0.txt"
  cache_counters >"$DIR/caches0.txt"
  redis-cli -p $((BASE + 9)) CONFIG RESETSTAT >/dev/null
  /usr/bin/time -f "%U %S %c %w" -o "$DIR/load.time" "$BIN/cascade-load" --insecure --call cascade.v1.Recommender.Recommend -O json --seed 2 \
    -d "{\"user\":{\"userId\":\"u{{randomInt 1 $((USERS + 1))}}\"},\"count\":20}" \
    -n "$REQUESTS" -c 4 127.0.0.1:"$BASE" >"$DIR/run.json"
  ticks >"$DIR/after.txt"
  redis_conns >"$DIR/conns1.txt"
  cache_counters >"$DIR/caches1.txt"
  redis-cli -p $((BASE + 9)) INFO commandstats >"$DIR/redis.txt"
  /usr/bin/python3 - "$DIR/before.txt" "$DIR/after.txt" "$DIR/run.json" "$REQUESTS" "$(getconf CLK_TCK)" "$DIR/load.time" <<'EOF'
import json, sys
before = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1])}
after = {l.split()[0]: l.split()[1:] for l in open(sys.argv[2])}
run = json.load(open(sys.argv[3]))
n, hz = int(sys.argv[4]), float(sys.argv[5])
print("calls %d, OK %d, degraded %d" % (run["count"], run["statusCodeDistribution"].get("OK", 0), run.get("degraded", 0)))
total = switches = 0.0
for p in before:
    ms = (int(after[p][0]) - int(before[p][0])) / hz * 1000 / n
    cs = (int(after[p][1]) - int(before[p][1])) / n
    total += ms
    switches += cs
    print("%-12s %7.3f ms CPU, %6.1f context switches per Recommend" % (p, ms, cs))
print("%-12s %7.3f ms CPU, %6.1f context switches per Recommend" % ("sum", total, switches))
# The load generator (closed loop, 4 workers) is not in the sum: /usr/bin/time.
u, s_, ic, vc = open(sys.argv[6]).read().split()[-4:]
print("%-12s %7.3f ms CPU, %6.1f context switches per Recommend (not in the sum)" % (
    "cascade-load", (float(u) + float(s_)) * 1000 / n, (int(ic) + int(vc)) / n))
EOF
  redis_commands "$DIR/redis.txt" "$REQUESTS"
  redis_trips "$DIR/conns0.txt" "$DIR/conns1.txt" "$REQUESTS"
  item_caches "$DIR/caches0.txt" "$DIR/caches1.txt" "$REQUESTS"
  exit 0
fi
for p in $PROCS; do callgrind_control -z "$(cat "$DIR/data/$p.pid")" >/dev/null 2>&1; done
redis-cli -p $((BASE + 9)) CONFIG RESETSTAT >/dev/null
redis_conns >"$DIR/conns0.txt"
cache_counters >"$DIR/caches0.txt"
load "$REQUESTS" 2 >"$DIR/run.json"
redis_conns >"$DIR/conns1.txt"
cache_counters >"$DIR/caches1.txt"
redis-cli -p $((BASE + 9)) INFO commandstats >"$DIR/redis.txt"
for p in $PROCS; do callgrind_control -d "$(cat "$DIR/data/$p.pid")" >/dev/null 2>&1; done
[ -z "$OUT" ] || { mkdir -p "$OUT" && cp "$DIR"/cg/* "$OUT"/; }
/usr/bin/python3 - "$DIR/run.json" "$DIR/cg" "$REQUESTS" $PROCS <<'EOF'
import glob, json, sys
run = json.load(open(sys.argv[1]))
n = int(sys.argv[3])
ok = run["statusCodeDistribution"].get("OK", 0)
print("calls %d, OK %d, degraded %d" % (run["count"], ok, run.get("degraded", 0)))
total = 0
for p in sys.argv[4:]:
    ir = 0
    # the dump after zeroing is the file with the highest part number (".<pid>.N")
    dumps = sorted(glob.glob("%s/%s.*.*" % (sys.argv[2], p)), key=lambda f: int(f.rsplit(".", 1)[1]))
    for line in open(dumps[-1]):
        if line.startswith("summary:") or line.startswith("totals:"):
            ir = int(line.split()[1])
            break
    total += ir
    print("%-12s %12.0f instructions per Recommend" % (p, ir / n))
print("%-12s %12.0f instructions per Recommend" % ("sum", total / n))
EOF
redis_commands "$DIR/redis.txt" "$REQUESTS"
redis_trips "$DIR/conns0.txt" "$DIR/conns1.txt" "$REQUESTS"
item_caches "$DIR/caches0.txt" "$DIR/caches1.txt" "$REQUESTS"
