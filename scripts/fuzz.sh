#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer) into build-fuzz/ and runs each for a
# bounded time, starting from the seed corpus in tests/fuzz/corpus/. A crash, leak or sanitizer
# report fails the script; the input that caused it is left in build-fuzz/artifacts/.
#   PINFER_FUZZ_SECONDS  time per target (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${PINFER_FUZZ_SECONDS:-25}
targets=(pi_file gguf safetensors)

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
# Only the fuzz targets and the libraries they link are built; the whole configuration is
# instrumented for coverage (fuzzer-no-link) and ASan.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  "-DCMAKE_C_FLAGS=-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer" \
  "-DCMAKE_CXX_FLAGS=-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer" \
  -DPINFER_FUZZ=ON -DPINFER_TESTS=ON -DPINFER_BENCH=OFF -DPINFER_CUDA=OFF >/dev/null
if ! cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/%/_fuzzer}" \
    >build-fuzz/build.log 2>&1; then
  tail -n 40 build-fuzz/build.log >&2
  echo "fuzz: building the fuzz targets failed (log: build-fuzz/build.log)" >&2
  exit 1
fi

mkdir -p build-fuzz/artifacts
for target in "${targets[@]}"; do
  work=build-fuzz/corpus/$target
  mkdir -p "$work"
  log=build-fuzz/$target.log
  # New inputs go to the work corpus; the committed seeds are only read.
  if ! build-fuzz/bin/${target}_fuzzer -max_total_time="$seconds" -max_len=65536 \
      -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$target-" "$work" "tests/fuzz/corpus/$target" \
      >"$log" 2>&1; then
    echo "fuzz: $target FAILED (log: $log, inputs: build-fuzz/artifacts/)" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
  echo "fuzz: $target: $runs runs in ${seconds}s, coverage $cov edges, no crashes"
done
