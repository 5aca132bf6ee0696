#!/usr/bin/env bash
# Prove the k8s manifests run (docs/deploy.md, "Smoke test"): build a Debian
# bookworm base with mmdebstrap from this machine's apt sources, build the
# Cascade image with podman, render k8s/overlays/local and play it with
# `podman kube play` on a private podman network (aardvark-dns resolves the
# Service names), load a small world with the load-world Job, get a
# non-degraded Recommend through the orchestrator's Service name from a pod
# on that network, and tear everything down. Root only (podman as root, as
# this machine supports it). Sends traffic only to the pods it created.
#
# usage: scripts/k8s-smoke.sh [--keep] [--rebuild-base] [--timeout-s N]
#   --keep          leave the pods, volumes and network up (tear down by hand:
#                   the commands are printed)
#   --rebuild-base  rebuild the mmdebstrap base image even if it exists
#   --timeout-s N   give up waiting for pods / the Job after N s (default 600)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KEEP=0 REBUILD_BASE=0 TIMEOUT_S=600
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --rebuild-base) REBUILD_BASE=1 ;;
    --timeout-s) TIMEOUT_S="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "k8s-smoke: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

BASE_IMAGE=localhost/cascade-base:bookworm
IMAGE=localhost/cascade:latest
NET=cascade-smoke
PY=/usr/bin/python3
P=(podman --runtime runc --cgroup-manager=cgroupfs)
WORK="$(mktemp -d /tmp/cascade-k8s-smoke.XXXXXX)"
T0=$(date +%s)
LAST=$T0

say() { echo "[k8s-smoke] $*"; }
die() { echo "k8s-smoke: $*" >&2; exit 1; }
# Print a step's duration and the total so far.
step_done() {
  local now; now=$(date +%s)
  say "$1: $((now - LAST)) s (total $((now - T0)) s)"
  LAST=$now
}

[ "$(id -u)" -eq 0 ] || die "run as root (podman as root is what works on these machines)"
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null || die "$tool is missing: scripts/install-deps.sh --deploy"
done
if ! grep -qs '^default_ulimits *= *\[\]' /etc/containers/containers.conf; then
  die "/etc/containers/containers.conf needs [containers] default_ulimits = [] (docs/deploy.md)"
fi

PODS=""
teardown() {
  local rc=$?
  if [ "$KEEP" = 1 ]; then
    say "kept: pods $PODS cascade-load-world, network $NET; tear down with:"
    say "  podman pod rm -f $PODS cascade-load-world; podman volume rm cascade-models cascade-events data-cascade-redis-0 cascade-config cascade-redis-auth; podman network rm $NET"
  else
    for pod in $PODS cascade-load-world; do "${P[@]}" pod rm -f -t 15 "$pod" >/dev/null 2>&1 || true; done
    # The PVCs, and the volumes podman 4.3 makes for each ConfigMap it mounts.
    for vol in cascade-models cascade-events data-cascade-redis-0 cascade-config cascade-redis-auth; do
      "${P[@]}" volume rm -f "$vol" >/dev/null 2>&1 || true
    done
    "${P[@]}" network rm -f "$NET" >/dev/null 2>&1 || true
    [ "$rc" -ne 0 ] || step_done "tear-down"
  fi
  rm -rf "$WORK"
  exit "$rc"
}

# Refuse to start over someone else's pods: the names are fixed (they are
# the Service names the orchestrator's config points at).
"${P[@]}" network exists "$NET" 2>/dev/null && die "podman network $NET exists: another smoke test is running, or remove it (podman network rm -f $NET)"
trap teardown EXIT

# 1. The base image, from this machine's apt sources.
if [ "$REBUILD_BASE" = 1 ] || ! "${P[@]}" image exists "$BASE_IMAGE"; then
  mmdebstrap --quiet --variant=apt bookworm "$WORK/base.tar" - < /etc/apt/sources.list.d/debian.sources
  "${P[@]}" import -q "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$WORK/base.tar"
  step_done "mmdebstrap base image $BASE_IMAGE"
else
  step_done "base image $BASE_IMAGE (exists; --rebuild-base to rebuild)"
fi

# 2. The Cascade image (layer cache: only what changed is rebuilt).
"${P[@]}" build -q --isolation chroot --network host --build-arg BASE="$BASE_IMAGE" \
  --build-arg JOBS="$(nproc)" -t "$IMAGE" -f "$ROOT/Containerfile" "$ROOT" >/dev/null
SIZE=$("${P[@]}" image inspect "$IMAGE" --format '{{.Size}}')
step_done "podman build $IMAGE ($((SIZE / 1000000)) MB)"

# 3. Render the local overlay and turn it into pods.
$PY "$ROOT/scripts/k8s-render.py" "$ROOT/k8s/overlays/local" -o "$WORK/rendered.yaml"
PODS=$($PY "$ROOT/scripts/k8s-podman.py" "$WORK/rendered.yaml" --pods "$WORK/pods.yaml" \
  --jobs "$WORK/jobs.yaml")
"${P[@]}" network create "$NET" >/dev/null
"${P[@]}" kube play --network "$NET" "$WORK/pods.yaml" >/dev/null
step_done "kube play ($PODS)"

# A one-off client container on the network (the image's own cascade-cli).
client() { "${P[@]}" run --rm --network "$NET" --ulimit host "$IMAGE" "$@"; }

# Wait until every service answers health SERVING by its Service name.
wait_serving() {
  local deadline=$(( $(date +%s) + TIMEOUT_S ))
  for addr in cascade-recall:50051 cascade-filter:50052 cascade-prerank:50053 \
              cascade-rank:50054 cascade-rerank:50055 cascade-orchestrator:50050; do
    until client cascade-cli health --addr "$addr" --timeout-ms 2000 >/dev/null 2>&1; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        "${P[@]}" pod ps >&2
        "${P[@]}" logs "${addr%%:*}-${addr%%:*}" 2>&1 | tail -20 >&2 || true
        die "$addr not SERVING after $TIMEOUT_S s"
      fi
      sleep 1
    done
  done
}
wait_serving
step_done "all six services SERVING"

# 4. The load-world Job: a small world into Redis, /data/latest and /models.
"${P[@]}" kube play --network "$NET" "$WORK/jobs.yaml" >/dev/null
JOB_RC=$(timeout "$TIMEOUT_S" "${P[@]}" wait cascade-load-world-load) || die "load-world Job did not finish in $TIMEOUT_S s"
if [ "$JOB_RC" != 0 ]; then
  "${P[@]}" logs cascade-load-world-load 2>&1 | tail -30 >&2
  die "load-world Job failed (exit $JOB_RC)"
fi
step_done "load-world Job"

# 5. Recommend through the orchestrator's Service name: 10 items, not degraded.
USER_ID=$("${P[@]}" run --rm --ulimit host -v cascade-events:/data:ro "$IMAGE" \
  sh -c 'sed -n 2p /data/latest/users.tsv | cut -f1')
[ -n "$USER_ID" ] || die "no user in /data/latest/users.tsv"
OUT=$(client cascade-cli recommend --addr cascade-orchestrator:50050 --user "$USER_ID" \
  --count 10 --timeout-ms 10000) || die "Recommend failed: $OUT"
echo "$OUT" | sed 's/^/    /'
echo "$OUT" | grep -q "  10 items$" || die "Recommend did not return 10 items"
if echo "$OUT" | grep -q '^degraded:'; then die "Recommend was degraded"; fi
step_done "Recommend via cascade-orchestrator:50050 (10 items, not degraded)"

say "PASS"
