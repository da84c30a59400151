#!/usr/bin/env bash
# End-to-end decode, as pi-run runs it, of every FFN mode on one model in one run: dense, exact
# (gate-first), predictor (when MODEL.predictor.pi or --predictor exists) and auto (the default).
# The modes alternate run by run (dense, exact, predictor, auto, dense, ...), so that a shared
# machine's load falls on all of them alike, and the medians of each mode's decode tokens/s,
# bytes read per token (KV and the predictor included) and effective GB/s are reported with the
# ratios to dense, from pi-run --json. The load average is printed before and after.
#
#   bench/sparse/decode_modes.sh MODEL.pi [-t THREADS] [-n TOKENS] [--runs N] [--build DIR]
#                                [--predictor FILE] [-p PROMPT]
# Example (synthetic llama-7b q4_0 at 10% planted density with learnable locality, its predictor
# trained first):
#   build/bin/pi-synth --shape llama-7b --dtype q4_0 --seed 1 -o /tmp/llama-7b.pi \
#     --locality power-law:alpha=1.5,hot=0.04,density=0.1,latent=64
#   scripts/make_predictor.sh /tmp/llama-7b.pi tests/data/text/tinystories_valid_head.txt
#   bench/sparse/decode_modes.sh /tmp/llama-7b.pi -t 2
# Any architecture pi-run runs works the same way, e.g. a gate-less OPT (fc1 -> relu -> fc2):
#   build/bin/pi-synth --shape opt-6.7b --dtype q4_0 --seed 1 -o /tmp/opt-6.7b.pi \
#     --locality power-law:alpha=1.5,hot=0.04,density=0.1,latent=64
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" threads=$(nproc) tokens=32 runs=3 model="" predictor="" prompt="Once upon a time"
while (($#)); do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -n) tokens="$2"; shift 2 ;;
    -p) prompt="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --predictor) predictor="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "decode_modes.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done
[[ -n "$model" ]] || { echo "decode_modes.sh: MODEL.pi is required (see --help)" >&2; exit 2; }
[[ -f "$model" ]] || { echo "decode_modes.sh: $model: no such file" >&2; exit 1; }
[[ -n "$predictor" ]] || predictor="${model%.pi}.predictor.pi"
modes=(dense exact)
[[ -f "$predictor" ]] && modes+=(predictor)
modes+=(auto)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags() {
  case "$1" in
    dense) echo --dense ;;
    exact) echo --sparse-mode exact ;;
    predictor) echo --sparse-mode predictor --predictor "$predictor" ;;
    auto) [[ -f "$predictor" ]] && echo --predictor "$predictor" ;;
  esac
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= runs; ++r)); do
  for mode in "${modes[@]}"; do
    # shellcheck disable=SC2046
    if ! "$build/bin/pi-run" -m "$model" -p "$prompt" -n "$tokens" --temp 0 -t "$threads" \
        $(flags "$mode") --json "$work/$mode.$r.json" >/dev/null 2>"$work/$mode.$r.err"; then
      echo "decode_modes.sh: pi-run ($mode) failed:" >&2
      tail -1 "$work/$mode.$r.err" >&2
      exit 1
    fi
  done
  echo "run $r of $runs done" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$model, $threads threads, $tokens decoded tokens, medians of $runs alternating runs"
python3 - "$work" "$runs" "${modes[@]}" <<'PY'
import json, statistics, sys
work, runs, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {}
for mode in modes:
    reports = [json.load(open(f"{work}/{mode}.{r}.json")) for r in range(1, runs + 1)]
    d = [x["decode"] for x in reports]
    layers = reports[-1]["ffn_layers"]
    chosen = sorted({l["decode_mode"] for l in layers}) if layers else ["-"]
    rows[mode] = (statistics.median(x["tokens_per_second"] for x in d),
                  statistics.median(x["bytes_per_token"] for x in d) / 1e6,
                  statistics.median(x["effective_gbps"] for x in d),
                  "/".join(chosen))
base = rows["dense"]
print(f"{'mode':<10} {'tokens/s':>10} {'MB/token':>10} {'GB/s':>8} {'x dense':>8} "
      f"{'bytes x':>8}  layers' decode modes")
for mode, (tps, mb, gbps, chosen) in rows.items():
    print(f"{mode:<10} {tps:>10.2f} {mb:>10.3f} {gbps:>8.2f} {tps / base[0]:>8.2f} "
          f"{mb / base[1]:>8.2f}  {chosen}")
best = max(v[0] for m, v in rows.items() if m != "auto")
print(f"auto against the best single mode: {rows['auto'][0] / best:.3f}")
PY
