#!/usr/bin/env bash
# pinfer's two q4_0 layouts on the same GGUF blocks: pi-convert --q4_0x16 (the matrices read by
# dot products as q4_0x16) against the default (GGUF's block order), decode of 1 sequence and of
# K sequences together (one batched pass per step), interleaved round by round; medians, and the
# cost of a K-sequence step over a 1-sequence step for each layout (a batch of K tokens should cost
# little more than one: each weight block is read once for all of them).
#
#   bench/e2e/q4_0_layouts.sh --gguf FILE [-t 2] [--rounds 3] [-n 16] [--sequences 4]
#                             [--work DIR] [--build DIR]
# The two .pi files are converted once into --work (default: a temporary directory).
set -euo pipefail
gguf="" threads=2 rounds=3 n=16 sequences=4 work="" build=build keep=0
while (($#)); do
  case $1 in
    --gguf) gguf="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    --sequences) sequences="$2"; shift 2 ;;
    --work) work="$2"; keep=1; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "q4_0_layouts.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "q4_0_layouts.sh: $*" >&2; exit 1; }
[[ -n "$gguf" ]] || die "--gguf FILE is required (see --help)"
[[ -f "$gguf" ]] || die "$gguf: no such file"
for tool in pi-convert pi-decode-bench; do
  [[ -x "$build/bin/$tool" ]] || die "$build/bin/$tool not found (build first)"
done
if [[ -z "$work" ]]; then work=$(mktemp -d); fi
mkdir -p "$work"
cleanup() { if ((keep == 0)); then rm -rf "$work"; fi; }
trap cleanup EXIT

declare -A model=([x16]="$work/x16.pi" [plain]="$work/plain.pi")
declare -A flags=([x16]="--q4_0x16" [plain]="")
for layout in x16 plain; do
  if [[ ! -f "${model[$layout]}" || "${model[$layout]}" -ot "$gguf" ]]; then
    echo "converting $gguf -> ${model[$layout]} ${flags[$layout]}" >&2
    # shellcheck disable=SC2086
    "$build/bin/pi-convert" "$gguf" ${flags[$layout]} -o "${model[$layout]}" -q
  fi
done

# Aggregate tokens/s of the decode steps (the CSV's tokens_per_s).
tps() {
  "$build/bin/pi-decode-bench" -m "$1" -p 0 -n "$n" -t "$threads" -r 1 --sequences "$2" --csv |
    tail -1 | awk -F, '{print $5}'
}
declare -A results
for ((r = 1; r <= rounds; ++r)); do
  for layout in x16 plain; do
    for k in 1 "$sequences"; do
      v=$(tps "${model[$layout]}" "$k")
      results[$layout,$k]+="$v "
      echo "round $r $layout sequences $k: $v tok/s" >&2
    done
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-8s %14s %14s %22s\n' layout "1 seq tok/s" "$sequences seq tok/s" "step($sequences)/step(1)"
for layout in x16 plain; do
  one=$(echo "${results[$layout,1]}" | median)
  many=$(echo "${results[$layout,$sequences]}" | median)
  # A step of K sequences makes K tokens: its time over a 1-sequence step's is K * one / many.
  ratio=$(awk -v o="$one" -v m="$many" -v k="$sequences" 'BEGIN {printf "%.2f", k * o / m}')
  printf '%-8s %14s %14s %22s\n' "$layout" "$one" "$many" "$ratio"
done
