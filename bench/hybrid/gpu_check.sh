#!/usr/bin/env bash
# The prepared check of the hybrid runtime on a GPU machine, in one run bounded in time (default
# 8 minutes, so that a rerun still fits a 15-minute lease). It
#   1. runs the CUDA tests: every kernel against its scalar reference (cuda_test) and the executor
#      on the device (hybrid_test's Cuda* tests: the device attention path with its KV cache, whole
#      models on the GPU against the dense CPU run, greedy text);
#   2. makes synthetic llama-7b and llama-13b q4_0 models (pi-synth, planted activation locality)
#      and profiles them (pi-profile, what pi-place reads);
#   3. decodes each at VRAM budgets of 25%, 50% and 100% of the model file:
#        pinfer CPU-only (--plan none), pinfer hybrid (--vram-budget: pi-place's plan), pinfer -ngl
#        (whole layers: budget / (size / layers), layers + 1 at 100%, as llama.cpp counts), and
#        llama.cpp -ngl at the same layer count when $LLAMA_CPP_BIN names a directory holding a
#        CUDA llama-bench (pi-synth then also writes the GGUF);
#      reporting tokens/s, GPU / CPU FFN ms per token, the host's wait on the device per token,
#      hot coverage, the VRAM used (pi-run's report) and effective GB/s.
# Everything goes under $OUT (default ./gpu_check_out): tests.log, results.md (the table),
# results.jsonl (one object per run), runs/*.err (each pi-run's stderr), status.txt.
#
#   bench/hybrid/gpu_check.sh [--build DIR] [--minutes M] [-n TOKENS] [-t THREADS] [--dry]
#
# --dry: the same logic on this machine without a GPU: a tiny synthetic model, --gpu-backend cpu
# (the CPU stands in for the device), budgets above the tiny model's size (pi-place's minimum
# working set is several MiB), and the tests that need no GPU skip themselves. It checks that every
# step runs and every field is parsed; its numbers mean nothing.
# Examples:
#   OUT=/tmp/gc bench/hybrid/gpu_check.sh --dry
#   LLAMA_CPP_BIN=/path/llama.cpp/build/bin bench/hybrid/gpu_check.sh   # on the GPU machine
set -uo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
minutes=8
generate=32
threads=$(nproc)
dry=0
while (($#)); do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --minutes) minutes="$2"; shift 2 ;;
    -n) generate="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --dry) dry=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: error: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
out="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$out/runs" "$out/models"
deadline=$(($(date +%s) + minutes * 60))
status="$out/status.txt"
: >"$status"
note() { echo "$*" | tee -a "$status" >&2; }
left() { echo $((deadline - $(date +%s))); }
# Runs a step with what is left of the time (at most $1 seconds); a step past the deadline is
# skipped and says so.
bounded() {
  local most="$1"; shift
  local rest
  rest=$(left)
  if ((rest <= 5)); then note "skipped (out of time): $*"; return 124; fi
  ((rest < most)) && most=$rest
  timeout --kill-after=5 "$most" "$@"
}

for tool in pi-synth pi-profile pi-place pi-run; do
  if [[ ! -x "$build/bin/$tool" ]]; then
    echo "gpu_check.sh: error: $build/bin/$tool is missing (--build DIR: a build with bin/)" >&2
    exit 1
  fi
done
# The test binaries find the bundled models under the repository, wherever it now is.
export PINFER_SOURCE_DIR="$root"

if ((dry)); then
  shapes="custom:d=256,ff=704,layers=4,heads=4,vocab=512"
  dtype="q8_0"
  budgets="210 300"
  backend=(--gpu-backend cpu)
  profile_tokens=64
else
  shapes="llama-7b llama-13b"
  dtype="q4_0"
  budgets="25 50 100"
  backend=(--gpu-backend cuda)
  profile_tokens=128
fi
llama_bench=""
if [[ -n "${LLAMA_CPP_BIN:-}" ]]; then
  if [[ -x "$LLAMA_CPP_BIN/llama-bench" ]]; then
    llama_bench="$LLAMA_CPP_BIN/llama-bench"
  else
    note "LLAMA_CPP_BIN=$LLAMA_CPP_BIN has no llama-bench: llama.cpp is left out"
  fi
else
  note "no LLAMA_CPP_BIN: llama.cpp is left out"
fi

# 1. The CUDA tests (they skip themselves without a device).
{
  for test in cuda_test hybrid_test; do
    [[ -x "$build/bin/$test" ]] || { echo "$test: not built"; continue; }
    filter="*"
    [[ "$test" == hybrid_test ]] && filter="*Cuda*"
    echo "== $test --gtest_filter=$filter"
    bounded 120 "$build/bin/$test" --gtest_filter="$filter" --gtest_brief=1
    echo "== $test exit $?"
  done
} >"$out/tests.log" 2>&1
note "tests: $(grep -cE '^\[  PASSED|^\[  FAILED' "$out/tests.log") summaries, $(grep -c 'FAILED  \]' "$out/tests.log") failure lines (tests.log)"

prompt="Once upon a time, there was a little girl who"
dataset="$root/tests/data/text/tinystories_valid_head.txt"
results="$out/results.jsonl"
: >"$results"
table="$out/results.md"
{
  echo "| model | run | budget | VRAM used | tok/s | GPU ms/tok | CPU ms/tok | wait ms/tok | hot coverage | GB/s |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$table"

# The number before "$2" on the first line of stdin matching "$1" ("-" when there is none).
field() {
  local v
  v=$(grep -m1 -- "$1" | grep -oE "[0-9.]+ $2" | head -1 | cut -d' ' -f1)
  echo "${v:--}"
}

# One pinfer decode; appends its row. $1 model, $2 name, $3 run label, $4 budget label, rest flags.
pinfer_row() {
  local model="$1" name="$2" label="$3" budget="$4"; shift 4
  local err="$out/runs/$name-$label-$budget.err"
  if ! bounded 150 "$build/bin/pi-run" -m "$model" -p "$prompt" -n "$generate" --temp 0 \
        -t "$threads" "$@" >/dev/null 2>"$err"; then
    note "$name $label $budget: $(tail -1 "$err")"
    echo "| $name | $label | $budget | - | error | - | - | - | - | - |" >>"$table"
    return
  fi
  local tps gbps gpu cpu wait coverage vram tokens waited
  tps=$(field "decode:" "tokens/s" <"$err")
  gbps=$(field "decode:" "GB/s" <"$err")
  gpu=$(grep -m1 "hybrid FFN over" "$err" | grep -oE "GPU part \([a-z]+\) [0-9.]+ ms" | grep -oE "[0-9.]+ ms" | cut -d' ' -f1)
  cpu=$(grep -m1 "hybrid FFN over" "$err" | grep -oE "CPU part [0-9.]+ ms" | grep -oE "[0-9.]+")
  coverage=$(grep -m1 "hybrid FFN over" "$err" | grep -oE "hot coverage [0-9.]+%" | grep -oE "[0-9.]+")
  vram=$(grep -m1 "VRAM (" "$err" | grep -oE "\): [0-9.]+ [KMGT]?i?B used" | sed 's/^): //; s/ used$//')
  # The device's synchronisations over every token of the run (prompt and decode).
  tokens=$(( $(field "prompt:" "tokens" <"$err" | tr -d -) + $(field "decode:" "tokens" <"$err" | tr -d -) ))
  waited=$(grep -m1 "^pi-run: device (" "$err" | grep -oE "waited [0-9.]+ ms" | grep -oE "[0-9.]+")
  wait=$(awk -v w="${waited:-}" -v n="$tokens" 'BEGIN { if (w != "" && n > 0) printf "%.3f", w / n; else print "-" }')
  echo "| $name | $label | $budget | ${vram:--} | $tps | ${gpu:--} | ${cpu:--} | $wait | ${coverage:--}% | $gbps |" >>"$table"
  echo "{\"model\":\"$name\",\"run\":\"$label\",\"budget\":\"$budget\",\"vram_used\":\"${vram:-}\",\"tokens_per_second\":\"$tps\",\"gpu_ms_per_token\":\"${gpu:-}\",\"cpu_ms_per_token\":\"${cpu:-}\",\"wait_ms_per_token\":\"$wait\",\"hot_coverage_percent\":\"${coverage:-}\",\"effective_gbps\":\"$gbps\"}" >>"$results"
}

for shape in $shapes; do
  name="$(echo "$shape" | sed 's/custom:.*/tiny/')-$dtype"
  model="$out/models/$name.pi"
  gguf="$out/models/$name.gguf"
  gguf_args=()
  [[ -n "$llama_bench" ]] && gguf_args=(--gguf "$gguf")
  if [[ ! -f "$model" ]]; then
    bounded 150 "$build/bin/pi-synth" --shape "$shape" --dtype "$dtype" -o "$model" \
        "${gguf_args[@]}" -q -t "$threads" || { note "$name: pi-synth failed or ran out of time"; continue; }
  fi
  if [[ ! -f "$out/models/$name.profile.pi" ]]; then
    bounded 120 "$build/bin/pi-profile" -m "$model" --dataset "$dataset" \
        --max-tokens "$profile_tokens" -q -t "$threads" >/dev/null ||
        { note "$name: pi-profile failed or ran out of time"; continue; }
  fi
  size=$(stat -c %s "$model")
  layers=$(grep -m1 -oE "[0-9]+ layers" < <("$build/bin/pi-run" -m "$model" -n 0 -p "" 2>&1) | cut -d' ' -f1)
  pinfer_row "$model" "$name" cpu-only 0 --plan none
  for percent in $budgets; do
    budget=$((size * percent / 100))
    ngl=$((budget * layers / size))
    ((percent >= 100)) && ngl=$((layers + 1))  # every layer and the output layer
    pinfer_row "$model" "$name" hybrid "$percent%" --vram-budget "$budget" "${backend[@]}"
    pinfer_row "$model" "$name" "ngl-$ngl" "$percent%" -ngl "$ngl" "${backend[@]}"
    if [[ -n "$llama_bench" ]]; then
      csv=$(bounded 120 "$llama_bench" -m "$gguf" -ngl "$ngl" -p 0 -n "$generate" -t "$threads" \
            -o csv 2>"$out/runs/$name-llama-$percent.err")
      tps=$(echo "$csv" | tr -d '"' | awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "avg_ts") c = i }
                                              NR > 1 && c { v = $c } END { print (v == "" ? "error" : v) }')
      echo "| $name | llama.cpp -ngl $ngl | $percent% | - | $tps | - | - | - | - | - |" >>"$table"
      echo "{\"model\":\"$name\",\"run\":\"llama.cpp -ngl $ngl\",\"budget\":\"$percent%\",\"tokens_per_second\":\"$tps\"}" >>"$results"
    fi
  done
done
note "done with $(left) s left of $((minutes * 60)); the table: $table"
cat "$table"
