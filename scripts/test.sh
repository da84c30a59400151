#!/usr/bin/env bash
# Builds pinfer and runs the whole test suite (GoogleTest via ctest, then the bounded fuzz runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900
if [[ -x scripts/fuzz.sh ]]; then scripts/fuzz.sh; fi
