#!/usr/bin/env bash
# Configures and builds pinfer into build/ (Release). The CUDA backend is built when nvcc is found.
#   scripts/build.sh                 everything: tools, tests, benchmarks
#   scripts/build.sh --tools         only the programs a user runs (pi-convert ... pi-server)
#   scripts/build.sh -DOPTION=VALUE  extra CMake options (e.g. -DCMAKE_CUDA_ARCHITECTURES=89)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
jobs=$(nproc)
targets=()
cmake_args=()
for arg in "$@"; do
  case $arg in
    --tools) targets=(pi-convert pi-inspect pi-run pi-server pi-profile pi-train-predictor pi-place
                      pi-prepare pi-export pi-tokenize) ;;
    *) cmake_args+=("$arg") ;;
  esac
done
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]+"${cmake_args[@]}"}" >/dev/null
cmake --build build -j "$jobs" ${targets[@]+--target "${targets[@]}"}
