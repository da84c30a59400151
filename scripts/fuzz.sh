#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer) into build-fuzz/ and runs each from the
# seed corpus in tests/fuzz/corpus/. A crash, a sanitizer report, a violated property (the targets
# abort), a leak, a timeout, or one allocation over the malloc limit fails the target; every
# target runs even when an earlier one failed, and the script fails at the end if any did. The
# input that failed is left in build-fuzz/artifacts/.
#   scripts/fuzz.sh [--long] [TARGET...]   (default: every target)
#   default   CI's bounded run: PINFER_FUZZ_SECONDS per target (default 15)
#   --long    each target until 10^6 executions or 60 s, whichever comes first
#             (PINFER_FUZZ_LONG_RUNS, PINFER_FUZZ_LONG_SECONDS)
set -euo pipefail
cd "$(dirname "$0")/.."
all_targets=(pi_file gguf safetensors llama2c_checkpoint llama2c_tokenizer hf_config hf_tokenizer
             sample_file model profile predictor plan openai_request)
long=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --long) long=1 ;;
    -*) echo "usage: scripts/fuzz.sh [--long] [TARGET...]" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
if [[ $long == 1 ]]; then
  bound=(-runs="${PINFER_FUZZ_LONG_RUNS:-1000000}" -max_total_time="${PINFER_FUZZ_LONG_SECONDS:-60}")
else
  bound=(-max_total_time="${PINFER_FUZZ_SECONDS:-15}")
fi

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# Only the fuzz targets and the libraries they link are built; the whole configuration is
# instrumented for coverage (fuzzer-no-link) and ASan.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
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
failed=()
for target in "${targets[@]}"; do
  work=build-fuzz/corpus/$target
  mkdir -p "$work"
  log=build-fuzz/$target.log
  dict=()
  [[ -f tests/fuzz/dict/$target.dict ]] && dict=(-dict="tests/fuzz/dict/$target.dict")
  # New inputs go to the work corpus; the committed seeds are only read. No input needs 512 MB
  # in one allocation: a larger one is an allocation sized by an unchecked count.
  start=$SECONDS
  status=ok
  if ! build-fuzz/bin/${target}_fuzzer "${bound[@]}" -max_len=65536 -rss_limit_mb=2048 \
      -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="build-fuzz/artifacts/$target-" "$work" "tests/fuzz/corpus/$target" \
      >"$log" 2>&1; then
    status=failed
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo "?")
  if [[ $status == failed ]]; then
    failed+=("$target")
    echo "fuzz: $target FAILED after $runs runs in $((SECONDS - start))s (log: $log, inputs: build-fuzz/artifacts/):" >&2
    grep -m 3 -E 'ERROR|property violated|out-of-memory|deadly signal|timeout' "$log" >&2 || tail -n 20 "$log" >&2
  else
    echo "fuzz: $target: $runs runs in $((SECONDS - start))s, coverage $cov edges, no crashes"
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
