#!/usr/bin/env bash
# Before/after speed of two pinfer builds, measured in one run on the same model bytes: dense
# prompt and decode (pi-decode-bench) on synthetic llama-7b q4_0, and the sparse decode FFN
# (pi-sparse-bench: dense against the planted 10% selection) on a 4-layer model of 7B width. The
# two builds alternate round by round (A, B, A, B ...) so that drift on a shared machine hits
# both; the medians of the rounds are reported.
#
#   bench/e2e/ab_bench.sh --a OLD_BIN_DIR --b NEW_BIN_DIR [-t THREADS] [--rounds N] [--work DIR]
#
# Each BIN_DIR holds pi-decode-bench, pi-sparse-bench and pi-synth (pi-synth is taken from --b).
# The synthetic models (3.6 GB and 0.5 GB) are written under --work (default: a temporary
# directory, deleted afterwards) unless they already exist there.
set -euo pipefail

a="" b="" threads=$(nproc) rounds=3 work="" keep=0
while (($#)); do
  case "$1" in
    --a) a="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --work) work="$2"; keep=1; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ab_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$a" || -z "$b" ]]; then echo "ab_bench.sh: --a and --b are required" >&2; exit 2; fi
for dir in "$a" "$b"; do
  for tool in pi-decode-bench pi-sparse-bench; do
    [[ -x "$dir/$tool" ]] || { echo "ab_bench.sh: $dir/$tool is missing" >&2; exit 1; }
  done
done
if [[ -z "$work" ]]; then work=$(mktemp -d); fi
mkdir -p "$work"
cleanup() { if ((keep == 0)); then rm -rf "$work"; fi; }
trap cleanup EXIT

dense="$work/llama-7b-q4_0.pi"
sparse="$work/synth-7bwide-4l-q4_0.pi"
[[ -f "$dense" ]] || "$b/pi-synth" --shape llama-7b --dtype q4_0 --seed 1 -q -o "$dense"
[[ -f "$sparse" ]] || "$b/pi-synth" --shape custom:d=4096,ff=11008,layers=4,heads=32,vocab=32000 \
  --dtype q4_0 --seed 1 -q -o "$sparse"

# One round of one build: "pp128 tok/s, tg32 tok/s, dense FFN ms/token, sparse FFN ms/token".
round() {
  local dir="$1" csv pp tg sp
  csv=$("$dir/pi-decode-bench" -m "$dense" -p 128 -n 32 -t "$threads" -r 1 --csv 2>/dev/null)
  pp=$(echo "$csv" | awk -F, '$3 == "pp128" {print $5}' | head -1)
  tg=$(echo "$csv" | awk -F, '$3 == "tg32" {print $5}' | head -1)
  sp=$("$dir/pi-sparse-bench" -m "$sparse" -n 16 -r 3 -t "$threads" 2>/dev/null |
    awk '$1 == "dense" {d = $2} $1 == "sparse" {s = $2} END {print d, s}')
  echo "$pp $tg $sp"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

: > "$work/a.txt"
: > "$work/b.txt"
for ((r = 1; r <= rounds; ++r)); do
  round "$a" >> "$work/a.txt"
  round "$b" >> "$work/b.txt"
  echo "round $r: A $(tail -1 "$work/a.txt") | B $(tail -1 "$work/b.txt")" >&2
done

echo "threads $threads, $rounds interleaved rounds, medians; A = $a, B = $b"
printf '%-34s %12s %12s %8s\n' "test" "A" "B" "B/A"
names=("llama-7b q4_0 prefill pp128 tok/s" "llama-7b q4_0 decode tg32 tok/s"
       "dense FFN ms/token (4 layers)" "sparse FFN ms/token (planted 10%)")
for col in 1 2 3 4; do
  ma=$(awk -v c="$col" '{print $c}' "$work/a.txt" | median)
  mb=$(awk -v c="$col" '{print $c}' "$work/b.txt" | median)
  printf '%-34s %12.3f %12.3f %8.3f\n' "${names[col - 1]}" "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
done
