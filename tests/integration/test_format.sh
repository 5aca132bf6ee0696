#!/usr/bin/env bash
# Every tracked C file matches .clang-format (scripts/format-check.sh).
set -euo pipefail
cd "${CASCADE_SOURCE_DIR:-$(dirname "$0")/../..}"
bash scripts/format-check.sh
