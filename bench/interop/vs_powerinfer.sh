#!/usr/bin/env bash
# pinfer against PowerInfer on the CPU, on the same bytes and the same predictor: pi-export writes
# MODEL.pi with PREDICTOR.pi as a PowerInfer GGUF, then PowerInfer's `main` (CPU only: VRAM budget
# 0) and pi-run decode it greedily with the same threads, prompt and token count, alternating run
# by run (which engine goes first alternates too), so that a shared machine's load falls on both
# alike. Reports the medians of the decode tokens/s and their ratio (pinfer / PowerInfer), and
# whether the two greedy texts agree (and where they part when they do not).
#
#   bench/interop/vs_powerinfer.sh MODEL.pi PREDICTOR.pi [-t THREADS] [-n TOKENS] [--runs N]
#       [-p PROMPT] [--pi-mode predictor|auto|exact|dense] [--gguf FILE] [--build DIR]
#       [--ignore-eos]
# POWERINFER_DIR: a PowerInfer source tree built for the CPU (its build/bin/main is run).
# --gguf FILE keeps the export there (and reuses it when it is newer than the model and the
# predictor); by default it goes to a temporary directory and is removed.
# --pi-mode: pi-run's FFN mode (default predictor: the same selection as PowerInfer's).
# --ignore-eos: PowerInfer's --ignore-eos (EOS never sampled); pi-run has no such flag, so the
# texts then part at pi-run's first EOS. Without it both stop at EOS, and the token counts say so.
# Example (a small relu model with learnable locality; the README has the 7B commands):
#   POWERINFER_DIR=/tmp/powerinfer bench/interop/vs_powerinfer.sh small.pi small.predictor.pi -t 2
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build" threads=$(nproc) tokens=32 runs=3 prompt="Once upon a time" pi_mode=predictor
model="" predictor="" gguf="" ignore_eos=0
while (($#)); do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -n) tokens="$2"; shift 2 ;;
    -p) prompt="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --pi-mode) pi_mode="$2"; shift 2 ;;
    --gguf) gguf="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --ignore-eos) ignore_eos=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "vs_powerinfer.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) if [[ -z "$model" ]]; then model="$1"; elif [[ -z "$predictor" ]]; then predictor="$1";
       else echo "vs_powerinfer.sh: unexpected argument $1 (see --help)" >&2; exit 2; fi
       shift ;;
  esac
done
fail() { echo "vs_powerinfer.sh: $*" >&2; exit 1; }
[[ -n "$model" && -n "$predictor" ]] || { echo "vs_powerinfer.sh: MODEL.pi and PREDICTOR.pi are required (see --help)" >&2; exit 2; }
[[ -f "$model" ]] || fail "$model: no such file"
[[ -f "$predictor" ]] || fail "$predictor: no such file"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || fail "--runs must be a positive integer, got '$runs'"
[[ "$tokens" =~ ^[1-9][0-9]*$ ]] || fail "-n must be a positive integer, got '$tokens'"
case "$pi_mode" in predictor|auto|exact|dense) ;; *) fail "--pi-mode must be predictor, auto, exact or dense, got '$pi_mode'" ;; esac
[[ -n "${POWERINFER_DIR:-}" ]] || fail "POWERINFER_DIR is not set: point it at a PowerInfer tree built for the CPU (build/bin/main)"
powerinfer="$POWERINFER_DIR/build/bin/main"
[[ -x "$powerinfer" ]] || fail "$powerinfer: not found or not executable (build PowerInfer for the CPU in POWERINFER_DIR)"
for tool in pi-export pi-run; do
  [[ -x "$build/bin/$tool" ]] || fail "$build/bin/$tool: not built (cmake --build $build --target $tool)"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[[ -n "$gguf" ]] || gguf="$work/model.powerinfer.gguf"
if [[ -f "$gguf" && "$gguf" -nt "$model" && "$gguf" -nt "$predictor" ]]; then
  echo "reusing $gguf (newer than the model and the predictor)"
else
  "$build/bin/pi-export" -m "$model" --format powerinfer --predictor "$predictor" -o "$gguf" -q \
    >"$work/export.out" 2>"$work/export.err" || fail "pi-export failed: $(tail -1 "$work/export.err")"
  echo "exported $model with $predictor to $gguf ($(du -h "$gguf" | cut -f1))"
fi

case "$pi_mode" in
  dense) pi_flags=(--dense) ;;
  auto) pi_flags=(--predictor "$predictor") ;;
  *) pi_flags=(--sparse-mode "$pi_mode" --predictor "$predictor") ;;
esac
pw_flags=(-m "$gguf" -p "$prompt" -n "$tokens" -t "$threads" --temp 0 --repeat-penalty 1.0
          --vram-budget 0 -c $((tokens + 64 + ${#prompt})) --seed 0 --simple-io)
((ignore_eos)) && pw_flags+=(--ignore-eos)

# PowerInfer: its stdout is the text; its stderr has llama_print_timings and, on failure, why.
run_powerinfer() {
  local r=$1
  if ! "$powerinfer" "${pw_flags[@]}" >"$work/pw.$r.txt" 2>"$work/pw.$r.err" </dev/null; then
    echo "vs_powerinfer.sh: PowerInfer cannot run the export $gguf: its last messages:" >&2
    grep -v '^\s*$' "$work/pw.$r.err" | tail -5 | sed 's/^/  /' >&2
    exit 1
  fi
  grep -q "eval time" "$work/pw.$r.err" ||
    fail "PowerInfer printed no timings (see its stderr: $(tail -1 "$work/pw.$r.err"))"
}
run_pinfer() {
  local r=$1
  "$build/bin/pi-run" -m "$model" "${pi_flags[@]}" -p "$prompt" -n "$tokens" --temp 0 \
      -t "$threads" --json "$work/pi.$r.json" >"$work/pi.$r.txt" 2>"$work/pi.$r.err" </dev/null ||
    fail "pi-run failed: $(tail -1 "$work/pi.$r.err")"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# One untimed run each first: both read the model into the page cache.
run_powerinfer warm
run_pinfer warm
for ((r = 1; r <= runs; ++r)); do
  if ((r % 2)); then run_powerinfer "$r"; run_pinfer "$r"; else run_pinfer "$r"; run_powerinfer "$r"; fi
  echo "run $r of $runs done" >&2
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$model with $predictor, $threads threads, -n $tokens, prompt '$prompt', medians of $runs alternating runs"
python3 - "$work" "$runs" "$pi_mode" <<'PY'
import json, re, statistics, sys
work, runs, pi_mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# "llama_print_timings:        eval time =  6223.41 ms /    31 runs   (  200.76 ms per token,
# 4.98 tokens per second)": the decode steps after the first token, which the prompt's step gives.
eval_re = re.compile(r"^llama_print_timings:\s+eval time =\s*([\d.]+) ms /\s*(\d+) runs", re.M)
pw, pi = [], []
for r in range(1, runs + 1):
    m = eval_re.search(open(f"{work}/pw.{r}.err").read())
    ms, steps = float(m.group(1)), int(m.group(2))
    pw.append((steps / (ms / 1e3) if ms > 0 else float("nan"), steps))
    d = json.load(open(f"{work}/pi.{r}.json"))["decode"]
    pi.append((d["tokens_per_second"], d["tokens"]))
pw_tps = statistics.median(x[0] for x in pw)
pi_tps = statistics.median(x[0] for x in pi)
print(f"{'engine':<22} {'decode tokens/s':>16} {'decode steps':>13}")
print(f"{'PowerInfer (CPU)':<22} {pw_tps:>16.2f} {pw[-1][1]:>13}")
print(f"{'pinfer (' + pi_mode + ')':<22} {pi_tps:>16.2f} {pi[-1][1]:>13}")
print(f"ratio pinfer / PowerInfer: {pi_tps / pw_tps:.2f}x")
# PowerInfer's stdout: the prompt and the generation (no newline at the end); pi-run's: the same,
# then a newline.
a = open(f"{work}/pw.1.txt", "rb").read()
b = open(f"{work}/pi.1.txt", "rb").read()
if b.endswith(b"\n") and not a.endswith(b"\n"):
    b = b[:-1]
if a == b:
    print(f"greedy texts agree ({len(a)} bytes)")
else:
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    ctx = lambda s: s[max(0, n - 24):n + 24].decode("utf-8", "replace").encode("unicode_escape").decode()
    print(f"greedy texts differ from byte {n} of {len(a)} (PowerInfer) / {len(b)} (pinfer):")
    print(f"  PowerInfer: ...{ctx(a)}...")
    print(f"  pinfer:     ...{ctx(b)}...")
PY
