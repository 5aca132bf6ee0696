#!/usr/bin/env bash
# Install every Debian package Cascade needs to build, run and test.
# Idempotent: packages already present are left alone. Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
  nanopb libnanopb-dev
  libhiredis-dev redis-server
  libopenblas-dev libjansson-dev libmicrohttpd-dev libxxhash-dev
  libcmocka-dev time libxgboost-dev openssl
  python3-grpcio python3-grpc-tools python3-protobuf
  python3-faiss python3-numpy python3-torch
)

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
