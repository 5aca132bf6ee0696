#!/usr/bin/env bash
# Install every Debian package Cascade needs to build, run and test.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
#   (no option)  everything to build, run and test (what scripts/test.sh and CI use)
#   --build      only what a Release build of the binaries needs (the Containerfile's
#                build stage: no test-only Python packages, no redis-server)
#   --deploy     everything, plus podman, runc and mmdebstrap for scripts/k8s-smoke.sh
#                (docs/deploy.md); opt-in, CI does not install them
set -euo pipefail

MODE=all
case "${1:-}" in
  "") ;;
  --build) MODE=build ;;
  --deploy) MODE=deploy ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "install-deps: unknown option '$1' (expected --build or --deploy)" >&2; exit 2 ;;
esac

BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
  nanopb libnanopb-dev
  libhiredis-dev libopenblas-dev libjansson-dev libmicrohttpd-dev libxxhash-dev
  libcmocka-dev libxgboost-dev
)

PACKAGES=(
  build-essential cmake pkg-config git
  libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
  nanopb libnanopb-dev
  libhiredis-dev redis-server
  libopenblas-dev libjansson-dev libmicrohttpd-dev libxxhash-dev
  libcmocka-dev time libxgboost-dev openssl clang-format iproute2 gdb
  python3-grpcio python3-grpc-tools python3-protobuf
  python3-faiss python3-numpy python3-torch python3-yaml
)
if [ "$MODE" = build ]; then
  PACKAGES=("${BUILD_PACKAGES[@]}")
elif [ "$MODE" = deploy ]; then
  PACKAGES+=(podman runc mmdebstrap)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
