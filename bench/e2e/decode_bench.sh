#!/usr/bin/env bash
# End-to-end speed of pinfer's dense CPU runtime per weight dtype, and the ratio to llama.cpp.
#
#   bench/e2e/decode_bench.sh [options] SOURCE
#
# SOURCE is anything pi-convert reads (a llama2.c .bin with --tokenizer, a GGUF, ...) or a .pi model
# (benchmarked as it is). The source is converted to each dtype (f32, q8_0, q4_0 by default) and
# build/bin/pi-decode-bench measures, as llama-bench does, prompt processing (pp, -p tokens at once)
# and decode (tg, -n tokens one by one): tokens/s and the effective bandwidth (bytes of weights and
# KV read per token / time).
#
# If LLAMA_CPP_DIR points at a llama.cpp build (its bin/ or build/bin/ holds llama-bench and
# llama-quantize) and a GGUF of the same model is known (SOURCE itself, or --gguf), the GGUF is
# quantized to the same dtypes and llama-bench runs with the same threads and token counts; the
# table then shows llama.cpp's tokens/s and pinfer's ratio to it. llama.cpp is never downloaded or
# built by this script.
#
# Options: -t THREADS (default: all cores)  -p N (512)  -n N (128)  -r REPETITIONS (5)
#          --tokenizer FILE (llama2.c sources)  --gguf FILE  --dtypes "f32 q8_0 q4_0"
#          --build DIR (pinfer build, default build/)
# Example:
#   LLAMA_CPP_DIR=~/llama.cpp/build bench/e2e/decode_bench.sh -t 2 \
#       --tokenizer models/stories260K/tok512.bin --gguf models/stories260K/stories260K.gguf \
#       models/stories260K/stories260K.bin
set -euo pipefail

threads=$(nproc)
prompt=512
generate=128
repetitions=5
tokenizer=""
gguf=""
dtypes="f32 q8_0 q4_0"
build="$(cd "$(dirname "$0")/../.." && pwd)/build"
source=""
while (($#)); do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -p) prompt="$2"; shift 2 ;;
    -n) generate="$2"; shift 2 ;;
    -r) repetitions="$2"; shift 2 ;;
    --tokenizer) tokenizer="$2"; shift 2 ;;
    --gguf) gguf="$2"; shift 2 ;;
    --dtypes) dtypes="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "decode_bench.sh: error: unknown option $1" >&2; exit 1 ;;
    *) source="$1"; shift ;;
  esac
done
if [[ -z "$source" ]]; then
  echo "decode_bench.sh: error: no SOURCE model given (see --help)" >&2
  exit 1
fi
if [[ ! -e "$source" ]]; then
  echo "decode_bench.sh: error: $source: no such file" >&2
  exit 1
fi
for tool in pi-convert pi-decode-bench; do
  if [[ ! -x "$build/bin/$tool" ]]; then
    echo "decode_bench.sh: error: $build/bin/$tool is missing: run scripts/build.sh first" >&2
    exit 1
  fi
done
if [[ -z "$gguf" && "$source" == *.gguf ]]; then gguf="$source"; fi

llama_bin=""
if [[ -n "${LLAMA_CPP_DIR:-}" ]]; then
  for dir in "$LLAMA_CPP_DIR/bin" "$LLAMA_CPP_DIR/build/bin" "$LLAMA_CPP_DIR"; do
    if [[ -x "$dir/llama-bench" ]]; then llama_bin="$dir"; break; fi
  done
  if [[ -z "$llama_bin" ]]; then
    echo "decode_bench.sh: warning: no llama-bench under LLAMA_CPP_DIR=$LLAMA_CPP_DIR" >&2
  elif [[ -z "$gguf" ]]; then
    echo "decode_bench.sh: warning: no GGUF of the model (--gguf): llama.cpp not run" >&2
    llama_bin=""
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Prints "avg_ts" of llama-bench's CSV rows: the pp row, then the tg row.
llama_rates() {
  awk -F'","' 'NR == 1 { gsub(/"/, ""); n = split($0, h, ","); for (i = 1; i <= n; i++) c[h[i]] = i; next }
               { gsub(/^"|"$/, ""); p = $(c["n_prompt"]); g = $(c["n_gen"]);
                 print (p > 0 ? "pp" : "tg"), $(c["avg_ts"]) }' "$1"
}

printf '%-6s %-6s %14s %10s %10s %16s %8s\n' dtype test "pinfer tok/s" "± stddev" "GB/s" \
  "llama.cpp tok/s" ratio
for dtype in $dtypes; do
  model="$source"
  if [[ "$source" != *.pi ]]; then
    model="$work/model-$dtype.pi"
    convert_args=("$source" --dtype "$dtype" -q -o "$model")
    if [[ -n "$tokenizer" ]]; then convert_args+=(--tokenizer "$tokenizer"); fi
    "$build/bin/pi-convert" "${convert_args[@]}" 2>"$work/convert.log" || {
      echo "decode_bench.sh: error: pi-convert to $dtype failed: $(tail -1 "$work/convert.log")" >&2
      exit 1
    }
  fi
  "$build/bin/pi-decode-bench" -m "$model" -p "$prompt" -n "$generate" -t "$threads" \
    -r "$repetitions" --csv >"$work/pinfer.csv"

  declare -A llama=()
  if [[ -n "$llama_bin" ]]; then
    quantized="$work/llama-$dtype.gguf"
    type=$(echo "$dtype" | tr '[:lower:]' '[:upper:]')
    if "$llama_bin/llama-quantize" "$gguf" "$quantized" "$type" >"$work/quantize.log" 2>&1; then
      if "$llama_bin/llama-bench" -m "$quantized" -t "$threads" -p "$prompt" -n "$generate" \
        -r "$repetitions" -o csv >"$work/llama.csv" 2>"$work/llama.log"; then
        while read -r test rate; do llama[$test]=$rate; done < <(llama_rates "$work/llama.csv")
      else
        echo "decode_bench.sh: llama-bench failed on $dtype: $(tail -1 "$work/llama.log")" >&2
      fi
    else
      echo "decode_bench.sh: llama.cpp cannot make a $dtype GGUF of this model:" \
        "$(grep -m1 -E 'divisible by 32,|failed to quantize' "$work/quantize.log" ||
          tail -1 "$work/quantize.log")" >&2
    fi
  fi
  tail -n +2 "$work/pinfer.csv" | while IFS=, read -r _ _ test _ rate stddev gbps _; do
    kind=${test:0:2}
    theirs=${llama[$kind]:-}
    if [[ -n "$theirs" ]]; then
      ratio=$(awk -v a="$rate" -v b="$theirs" 'BEGIN { printf "%.2fx", a / b }')
    else
      theirs="-"
      ratio="-"
    fi
    printf '%-6s %-6s %14s %10s %10s %16s %8s\n' "$dtype" "$test" "$rate" "$stddev" "$gbps" \
      "$theirs" "$ratio"
  done
  unset llama
done
echo "threads $threads, pp $prompt tokens, tg $generate tokens, $repetitions runs each;" \
  "pinfer kernels: scalar or SIMD as built (see pi-run's log line)" >&2
