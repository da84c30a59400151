#!/usr/bin/env bash
# pinfer against llama.cpp on the same GGUF bytes, the same dtype and the same threads, the two
# programs interleaved round by round (pinfer, llama.cpp, pinfer, ...) so that drift on a shared
# machine hits both; medians of the rounds and the ratio pinfer / llama.cpp are printed.
#
#   LLAMA_CPP_DIR=DIR bench/e2e/vs_llama_cpp.sh --gguf FILE [options]
#
# Tests (each one timed run per round after the programs' own warm-up run):
#   tg N     decode of N tokens one at a time        pi-decode-bench -n N   | llama-bench -n N
#   pp N     a prompt of N tokens from an empty cache pi-decode-bench -p N   | llama-bench -p N
#   npl K    K sequences decoding together, aggregate tokens/s of the decode steps
#            pi-decode-bench --sequences K (one batched pass per step) | llama-batched-bench -npl K
# The .pi is converted from the GGUF by pi-convert (lossless: the same quantized blocks), once,
# next to --work. The GGUF can be made with
#   build/bin/pi-synth --shape llama-7b --dtype q4_0 --seed 1 -o X.pi --gguf X.gguf
# LLAMA_CPP_DIR is a llama.cpp build directory (its bin/ holds llama-bench and
# llama-batched-bench), built outside the repo in Release with GGML_NATIVE (llama.cpp's default),
# e.g. by ../shared/tools/build-reference.sh (set LLAMA_CPP_COMMIT to name its commit). Both engines run their default KV cache type unless
# --cache-type is given (then both get it: pinfer --cache-type, llama.cpp -ctk/-ctv).
#
# Options: -t "1 2" thread counts (default: all cores)   --rounds N (3)   --tg N (32)
#          --pp N (512, 0: skip)   --npl "1 2 4 8" (empty: skip)   --npl-tg N (16)
#          --cache-type T   --work DIR (default: a temporary directory)   --build DIR (build/)
set -euo pipefail

gguf="" threads=$(nproc) rounds=3 tg=32 pp=512 npl="1 2 4 8" npl_tg=16 cache_type="" work=""
build=build
while (($#)); do
  case "$1" in
    --gguf) gguf="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --tg) tg="$2"; shift 2 ;;
    --pp) pp="$2"; shift 2 ;;
    --npl) npl="$2"; shift 2 ;;
    --npl-tg) npl_tg="$2"; shift 2 ;;
    --cache-type) cache_type="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vs_llama_cpp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "vs_llama_cpp.sh: $*" >&2; exit 1; }
[[ -n "$gguf" ]] || die "--gguf FILE is required (see --help)"
[[ -f "$gguf" ]] || die "$gguf: no such file"
[[ -n "${LLAMA_CPP_DIR:-}" ]] || die "LLAMA_CPP_DIR is not set (a llama.cpp build directory)"
llama_bin="$LLAMA_CPP_DIR/bin"
[[ -x "$llama_bin/llama-bench" ]] || llama_bin="$LLAMA_CPP_DIR/build/bin"
for tool in llama-bench llama-batched-bench; do
  [[ -x "$llama_bin/$tool" ]] || die "$LLAMA_CPP_DIR: no bin/$tool"
done
for tool in pi-decode-bench pi-convert; do
  [[ -x "$build/bin/$tool" ]] || die "$build/bin/$tool is missing (build it first)"
done
keep=1
if [[ -z "$work" ]]; then work=$(mktemp -d); keep=0; fi
mkdir -p "$work"
cleanup() { if ((keep == 0)); then rm -rf "$work"; fi; }
trap cleanup EXIT

pi="$work/$(basename "${gguf%.gguf}").pi"
if [[ ! -f "$pi" || "$pi" -ot "$gguf" ]]; then
  echo "converting $gguf -> $pi" >&2
  "$build/bin/pi-convert" "$gguf" -o "$pi" >&2
fi

pi_kv=() llama_kv=()
if [[ -n "$cache_type" ]]; then
  pi_kv=(--cache-type "$cache_type")
  llama_kv=(-ctk "$cache_type" -ctv "$cache_type")
fi

# One measurement, printed as one number (tokens/s). $1 engine, $2 test kind, $3 count, $4 threads.
measure() {
  local engine="$1" kind="$2" count="$3" t="$4"
  case "$engine:$kind" in
    pinfer:tg) "$build/bin/pi-decode-bench" -m "$pi" -p 0 -n "$count" -t "$t" -r 1 --csv \
                 "${pi_kv[@]}" 2>/dev/null | awk -F, 'NR > 1 {print $5}' ;;
    pinfer:pp) "$build/bin/pi-decode-bench" -m "$pi" -p "$count" -n 0 -b "$count" -t "$t" -r 1 \
                 --csv "${pi_kv[@]}" 2>/dev/null | awk -F, 'NR > 1 {print $5}' ;;
    pinfer:npl) "$build/bin/pi-decode-bench" -m "$pi" -p 0 -n "$npl_tg" --sequences "$count" \
                  -t "$t" -r 1 --csv "${pi_kv[@]}" 2>/dev/null | awk -F, 'NR > 1 {print $5}' ;;
    llama:tg) "$llama_bin/llama-bench" -m "$gguf" -p 0 -n "$count" -t "$t" -r 1 -o csv \
                "${llama_kv[@]}" 2>/dev/null | awk -F'","' 'NR > 1 {gsub(/"/, "", $NF); print $(NF-1)}' ;;
    llama:pp) "$llama_bin/llama-bench" -m "$gguf" -p "$count" -n 0 -t "$t" -r 1 -o csv \
                "${llama_kv[@]}" 2>/dev/null | awk -F'","' 'NR > 1 {gsub(/"/, "", $NF); print $(NF-1)}' ;;
    # S_TG: the decode steps' aggregate tokens/s (llama-batched-bench's own column), after a
    # one-token prompt per sequence (it prints its JSON line on stderr).
    llama:npl) "$llama_bin/llama-batched-bench" -m "$gguf" -c $((count * (npl_tg + 8))) \
                 -npp 1 -ntg "$npl_tg" -npl "$count" -t "$t" --output-format jsonl \
                 "${llama_kv[@]}" 2>&1 | sed -n 's/.*"speed_tg": *\([0-9.]*\).*/\1/p' ;;
  esac
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

tests=("tg $tg")
((pp > 0)) && tests+=("pp $pp")
for k in $npl; do tests+=("npl $k"); done

results="$work/results.txt"
: > "$results"
for t in $threads; do
  for ((r = 1; r <= rounds; ++r)); do
    for test in "${tests[@]}"; do
      read -r kind count <<< "$test"
      a=$(measure pinfer "$kind" "$count" "$t")
      b=$(measure llama "$kind" "$count" "$t")
      echo "$t $kind$count ${a:-nan} ${b:-nan}" >> "$results"
      echo "threads $t round $r $kind$count: pinfer ${a:-failed} llama.cpp ${b:-failed} tok/s" >&2
    done
  done
done

# llama.cpp's commit: LLAMA_CPP_COMMIT when given (a build from an exported tree has no git), else
# what its build recorded; its build type and GGML_NATIVE from its CMake cache.
commit=${LLAMA_CPP_COMMIT:-$(cd "$LLAMA_CPP_DIR" && git rev-parse --short HEAD 2>/dev/null || echo unknown)}
flags=$(grep -E '^(CMAKE_BUILD_TYPE|GGML_NATIVE)[:=]' "$LLAMA_CPP_DIR/CMakeCache.txt" 2>/dev/null |
  sed 's/:[A-Z]*=/=/' | tr '\n' ' ')
kv_type=${cache_type:-"each engine's default"}
echo "pinfer: $("$build/bin/pi-decode-bench" --version 2>/dev/null | head -1)"
echo "llama.cpp: $LLAMA_CPP_DIR, commit $commit, ${flags:-build flags unknown}"
echo "CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$rounds interleaved rounds, medians, tokens/s; KV cache: $kv_type"
printf '| %-7s | %-8s | %10s | %10s | %6s |\n' threads test pinfer llama.cpp ratio
printf '|---------|----------|-----------:|-----------:|-------:|\n'
for t in $threads; do
  for test in "${tests[@]}"; do
    read -r kind count <<< "$test"
    name="$kind$count"
    a=$(awk -v t="$t" -v n="$name" '$1 == t && $2 == n {print $3}' "$results" | median)
    b=$(awk -v t="$t" -v n="$name" '$1 == t && $2 == n {print $4}' "$results" | median)
    ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0 && a > 0) printf "%.2fx", a / b; else print "-"}')
    printf '| %-7s | %-8s | %10.2f | %10.2f | %6s |\n' "$t" "$name" "$a" "$b" "$ratio"
  done
done
