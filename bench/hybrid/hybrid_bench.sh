#!/usr/bin/env bash
# Hybrid GPU/CPU decode speed for VRAM budgets that hold part of the model, and llama.cpp with -ngl
# filling the same budget.
#
#   bench/hybrid/hybrid_bench.sh [options]
#
# For each shape and dtype: pi-synth writes a synthetic model (planted activation locality, fatrelu:
# exact zeros) and, when llama.cpp is available, the same weights as GGUF; pi-profile profiles it on
# TinyStories text (model.profile.pi, what pi-place reads). Then for each budget, a percentage of the
# model file's size, pi-run decodes with --vram-budget (pi-place solves and caches the plan beside
# the model) and the table reports decode tokens/s, the GPU and CPU FFN time per token and the hot
# coverage achieved (from pi-run's stderr), next to the CPU-only run (--plan none). Without a GPU
# (or a build without CUDA) the plan's GPU part runs on the CPU and the table says so: the numbers
# are then only a check that the pipeline runs.
#
# If LLAMA_CPP_DIR points at a llama.cpp build with CUDA (its bin/ or build/bin/ holds llama-bench),
# llama-bench decodes the GGUF with -ngl = the number of whole layers that fit the same budget
# (budget / (file size / layers); layers + 1, the output too, at 100%), same threads and tokens. Nothing is downloaded or built.
#
# Options: --shapes "llama-7b llama-13b"  --dtypes "q4_0 f16"  --budgets "25 50 100" (percent)
#          -n TOKENS (32)  -t THREADS (all cores)  --profile-tokens N (128)
#          --dir DIR (models and results; default bench/hybrid/work)  --build DIR (default build/)
#          --delete-after: remove each model (and its GGUF, profile, plans) once measured, for small
#          disks (7B+13B at q4_0+f16 are ~51 GB, twice that with the GGUFs)
# Output: a Markdown table on stdout; DIR/results.jsonl has one JSON object per row.
# Examples:
#   bench/hybrid/hybrid_bench.sh                                  # the GPU session's run
#   LLAMA_CPP_DIR=~/llama.cpp/build bench/hybrid/hybrid_bench.sh --shapes llama-7b --dtypes q4_0
#   bench/hybrid/hybrid_bench.sh --shapes custom:d=256,ff=704,layers=4,heads=4,vocab=512 \
#       --dtypes q8_0 --budgets "210 230 300" -n 16 --profile-tokens 128 -t 1 --dir /tmp/hybrid-tiny
#       (CPU-only smoke run: a tiny model needs budgets above its size, pi-place's minimum working
#       set is ~7 MiB of workspace)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
shapes="llama-7b llama-13b"
dtypes="q4_0 f16"
budgets="25 50 100"
generate=32
threads=$(nproc)
profile_tokens=128
dir="$root/bench/hybrid/work"
build="$root/build"
delete_after=0
while (($#)); do
  case "$1" in
    --shapes) shapes="$2"; shift 2 ;;
    --dtypes) dtypes="$2"; shift 2 ;;
    --budgets) budgets="$2"; shift 2 ;;
    -n) generate="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --profile-tokens) profile_tokens="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --delete-after) delete_after=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "hybrid_bench.sh: error: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
for tool in pi-synth pi-profile pi-place pi-run; do
  if [[ ! -x "$build/bin/$tool" ]]; then
    echo "hybrid_bench.sh: error: $build/bin/$tool is missing: run scripts/build.sh first" >&2
    exit 1
  fi
done
llama_bench=""
if [[ -n "${LLAMA_CPP_DIR:-}" ]]; then
  for candidate in "$LLAMA_CPP_DIR/bin/llama-bench" "$LLAMA_CPP_DIR/build/bin/llama-bench"; do
    [[ -x "$candidate" ]] && llama_bench="$candidate" && break
  done
  if [[ -z "$llama_bench" ]]; then
    echo "hybrid_bench.sh: error: LLAMA_CPP_DIR=$LLAMA_CPP_DIR has no bin/llama-bench" >&2
    exit 1
  fi
fi
mkdir -p "$dir"
results="$dir/results.jsonl"
: >"$results"
dataset="$root/tests/data/text/tinystories_valid_head.txt"
prompt="Once upon a time, there was a little girl who"

# Field of pi-run's stderr: the number before "$2" on the line starting with "$1".
field() { grep -m1 "$1" | grep -oE "[0-9.]+ $2" | head -1 | cut -d' ' -f1; }

# pi-run decode with the extra flags; prints "tok/s gpu_ms cpu_ms coverage backend", or "error"
# fields after printing pi-run's error line on stderr (a budget below pi-place's minimum...).
run_pinfer() {
  local model="$1"; shift
  local err
  if ! err=$("$build/bin/pi-run" -m "$model" -p "$prompt" -n "$generate" --temp 0 -t "$threads" \
             "$@" 2>&1 >/dev/null); then
    echo "hybrid_bench.sh: pi-run $*: $(echo "$err" | tail -1)" >&2
    echo "error - - - error"
    return
  fi
  local tps gpu cpu coverage backend
  tps=$(echo "$err" | field "decode:" "tokens/s")
  local line
  line=$(echo "$err" | grep -m1 "hybrid FFN over" || true)
  if [[ -n "$line" ]]; then
    gpu=$(echo "$line" | grep -oE "GPU part \([a-z]+\) [0-9.]+ ms/token" | grep -oE "[0-9.]+ ms" | cut -d' ' -f1)
    cpu=$(echo "$line" | grep -oE "CPU part [0-9.]+ ms/token" | grep -oE "[0-9.]+" | head -1)
    coverage=$(echo "$line" | grep -oE "hot coverage [0-9.]+%" | grep -oE "[0-9.]+")
    backend=$(echo "$line" | grep -oE "GPU part \([a-z]+\)" | grep -oE "\([a-z]+\)" | tr -d '()')
    if [[ "$backend" == "none" ]]; then backend="(no GPU neurons)"; fi
    if [[ "$backend" == "cpu" ]]; then backend="cpu (no GPU)"; fi
  else
    gpu="-"; cpu="-"; coverage="-"; backend="cpu only"
  fi
  echo "$tps $gpu $cpu $coverage $backend"
}

echo "| model | dtype | budget | VRAM budget | pinfer tok/s | GPU ms/tok | CPU ms/tok | hot coverage | GPU part | llama.cpp -ngl | llama.cpp tok/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for shape in $shapes; do
  for dtype in $dtypes; do
    name="$(echo "$shape" | tr ':,=' '_-_')-$dtype"
    model="$dir/$name.pi"
    gguf="$dir/$name.gguf"
    if [[ ! -f "$model" || ( -n "$llama_bench" && ! -f "$gguf" ) ]]; then
      gguf_args=()
      [[ -n "$llama_bench" ]] && gguf_args=(--gguf "$gguf")
      "$build/bin/pi-synth" --shape "$shape" --dtype "$dtype" -o "$model" "${gguf_args[@]}" -q -t "$threads"
    fi
    if [[ ! -f "$dir/$name.profile.pi" ]]; then
      "$build/bin/pi-profile" -m "$model" --dataset "$dataset" --max-tokens "$profile_tokens" \
          -q -t "$threads" >/dev/null
    fi
    size=$(stat -c %s "$model")
    layers=$("$build/bin/pi-inspect" "$model" | grep -oE "llama.n_layers +int[0-9]* +[0-9]+" \
             | grep -oE "[0-9]+$" || true)
    read -r tps gpu cpu coverage backend < <(run_pinfer "$model" --plan none)
    echo "| $name | $dtype | CPU only | 0 | $tps | - | - | - | - | - | - | - |"
    echo "{\"model\":\"$name\",\"dtype\":\"$dtype\",\"budget_percent\":0,\"tokens_per_second\":$tps}" >>"$results"
    for percent in $budgets; do
      budget=$((size * percent / 100))
      read -r tps gpu cpu coverage backend < <(run_pinfer "$model" --vram-budget "$budget")
      ngl="-"; llama_tps="-"; ratio="-"
      if [[ -n "$llama_bench" && -n "$layers" && "$tps" != "error" ]]; then
        ngl=$((budget * layers / size))
        ((budget >= size)) && ngl=$((layers + 1))  # every layer and the output layer
        llama_tps=$("$llama_bench" -m "$gguf" -ngl "$ngl" -p 0 -n "$generate" -t "$threads" -o csv \
                    2>/dev/null | tr -d '"' | awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "avg_ts") c = i }
                                                    NR > 1 && c { v = $c } END { print (v == "" ? "error" : v) }')
        ratio=$(awk -v a="$tps" -v b="$llama_tps" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      fi
      echo "| $name | $dtype | $percent% | $budget | $tps | $gpu | $cpu | $coverage% | $backend | $ngl | $llama_tps | $ratio |"
      json_tps="$tps"; [[ "$tps" == "error" ]] && json_tps=null
      echo "{\"model\":\"$name\",\"dtype\":\"$dtype\",\"budget_percent\":$percent,\"budget_bytes\":$budget,\"tokens_per_second\":$json_tps,\"gpu_ms_per_token\":\"$gpu\",\"cpu_ms_per_token\":\"$cpu\",\"hot_coverage_percent\":\"$coverage\",\"gpu_part\":\"$backend\",\"llama_cpp_ngl\":\"$ngl\",\"llama_cpp_tokens_per_second\":\"$llama_tps\"}" >>"$results"
    done
    if ((delete_after)); then
      rm -f "$model" "$gguf" "$dir/$name".profile.* "$dir/$name".plan*.pi "$dir/$name".samples.zst
    fi
  done
done
