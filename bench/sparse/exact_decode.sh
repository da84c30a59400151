#!/usr/bin/env bash
# End-to-end decode of dense against exact gate-first selection (--sparse-mode exact), as pi-run
# runs it, on one model: the two alternate run by run (dense, exact, dense, exact, ...) and the
# medians of the decode tokens/s and of the bytes read per token are reported.
#
#   bench/sparse/exact_decode.sh MODEL.pi [-t THREADS] [-n TOKENS] [--runs N] [--build DIR]
# Example (synthetic llama-7b q4_0 at 10% planted density):
#   build/bin/pi-synth --shape llama-7b --dtype q4_0 --seed 1 -o /tmp/llama-7b.pi
#   bench/sparse/exact_decode.sh /tmp/llama-7b.pi -t 2
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" threads=$(nproc) tokens=32 runs=3 model=""
while (($#)); do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -n) tokens="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "exact_decode.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done
[[ -n "$model" ]] || { echo "exact_decode.sh: MODEL.pi is required (see --help)" >&2; exit 2; }
[[ -f "$model" ]] || { echo "exact_decode.sh: $model: no such file" >&2; exit 1; }

# "tokens/s MB/token" of one decode run.
decode() {
  "$build/bin/pi-run" -m "$model" -n "$tokens" --temp 0 -t "$threads" "$@" 2>&1 >/dev/null |
    awk '/^pi-run: decode:/ {for (i = 1; i <= NF; ++i) {if ($i == "tokens/s,") t = $(i - 1);
         if ($i == "MB" && m == "") m = $(i - 1)} print t, m}'
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

: > /tmp/exact_decode.$$.dense
: > /tmp/exact_decode.$$.exact
trap 'rm -f /tmp/exact_decode.$$.*' EXIT
for ((r = 1; r <= runs; ++r)); do
  decode --dense >> /tmp/exact_decode.$$.dense
  decode --sparse-mode exact >> /tmp/exact_decode.$$.exact
  echo "run $r: dense $(tail -1 /tmp/exact_decode.$$.dense) | exact $(tail -1 /tmp/exact_decode.$$.exact)" >&2
done
echo "$model, $threads threads, $tokens decoded tokens, medians of $runs alternating runs"
printf '%-8s %12s %14s\n' mode "tokens/s" "MB read/token"
for mode in dense exact; do
  printf '%-8s %12.2f %14.1f\n' "$mode" "$(awk '{print $1}' /tmp/exact_decode.$$.$mode | median)" \
    "$(awk '{print $2}' /tmp/exact_decode.$$.$mode | median)"
done
