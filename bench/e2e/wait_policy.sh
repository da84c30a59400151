#!/usr/bin/env bash
# How libgomp's wait policy changes decode speed, on a quiet machine and on a loaded one: the
# OpenMP default (spin about 300000 iterations before sleeping), GOMP_SPINCOUNT=N for each N of
# --spins, and OMP_WAIT_POLICY=passive, interleaved round by round; medians of tokens/s.
#
#   bench/e2e/wait_policy.sh MODEL.pi [-t 2] [-n 16] [--rounds 3] [--spins "10000 100000"]
#                            [--load "0 2"] [--build DIR]
#
# --load K: K busy processes (a shell loop each) run during that part of the measurement, so that
# "a loaded machine" is the same load for every policy. The figure is pi-decode-bench's tg: one
# sequence decoding -n tokens after an empty prompt.
set -euo pipefail
model="" threads=2 n=16 rounds=3 spins="10000 100000" loads="0 2" build=build
while (($#)); do
  case $1 in
    -t) threads="$2"; shift 2 ;;
    -n) n="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --spins) spins="$2"; shift 2 ;;
    --load) loads="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "wait_policy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done
die() { echo "wait_policy.sh: $*" >&2; exit 1; }
[[ -n "$model" ]] || die "MODEL.pi is required (see --help)"
[[ -f "$model" ]] || die "$model: no such file"
bench="$build/bin/pi-decode-bench"
[[ -x "$bench" ]] || die "$bench not found (build first, or --build DIR)"

work=$(mktemp -d)
busy=()
stop_load() {
  for pid in "${busy[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${busy[@]}"; do wait "$pid" 2> /dev/null || true; done
  busy=()
}
trap 'stop_load; rm -rf "$work"' EXIT

policies=(default)
for s in $spins; do policies+=("spin:$s"); done
policies+=(passive)

# Tokens/s of one tg run under policy $1.
run() {
  local env=()
  case $1 in
    default) env=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT) ;;
    passive) env=(env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive) ;;
    spin:*) env=(env -u OMP_WAIT_POLICY "GOMP_SPINCOUNT=${1#spin:}") ;;
  esac
  "${env[@]}" "$bench" -m "$model" -p 0 -n "$n" -t "$threads" -r 1 --csv 2> /dev/null |
    tail -1 | cut -d, -f5
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "model $model, $threads threads, tg$n, $rounds interleaved rounds, medians" >&2
for load in $loads; do
  for ((i = 0; i < load; ++i)); do
    bash -c 'while :; do :; done' &
    busy+=($!)
  done
  for p in "${policies[@]}"; do : > "$work/$load.$p"; done
  for ((r = 1; r <= rounds; ++r)); do
    line="load $load round $r:"
    for p in "${policies[@]}"; do
      tps=$(run "$p")
      [[ -n "$tps" ]] || die "pi-decode-bench failed under $p (run it by hand to see why)"
      echo "$tps" >> "$work/$load.$p"
      line="$line $p $tps"
    done
    echo "$line" >&2
  done
  stop_load
done

printf '| busy processes |'
for p in "${policies[@]}"; do printf ' %s |' "$p"; done
printf '\n|---|'
for p in "${policies[@]}"; do printf -- '---|'; done
printf '\n'
for load in $loads; do
  printf '| %s |' "$load"
  for p in "${policies[@]}"; do printf ' %.2f |' "$(median < "$work/$load.$p")"; done
  printf '\n'
done
