#!/usr/bin/env bash
# Aggregate decode speed of pi-server under 1, 2, 4 and 8 concurrent clients, through HTTP, and
# of llama.cpp's llama-server -np N on the same GGUF and threads when LLAMA_CPP_DIR is set.
#
#   bench/serve/serve_bench.sh -m MODEL.gguf [-t THREADS] [-n TOKENS] [--clients "1 2 4 8"]
#                              [--rounds R] [-c CTX] [--bin BUILD_BIN_DIR] [--port PORT]
#
# For each client count N: pi-server --parallel N (and llama-server -np N -c N*CTX, so that each
# of its slots has CTX too) are started once; then, R rounds, alternating the servers, N clients
# (curl, in parallel) each POST /v1/completions with a prompt of their own, "temperature": 0 and
# "max_tokens": TOKENS. A round's figure is the completion tokens of all N replies (their
# usage.completion_tokens) over its wall time; the table shows the medians of the rounds. The
# prompts are short (a few tokens), so the figure is decode speed: every client decodes at once.
# With LLAMA_CPP_DIR (a build directory with bin/llama-server and bin/llama-batched-bench),
# llama-batched-bench's table (-npp 8 -ntg TOKENS -npl CLIENTS) follows, for the same GGUF.
#
# MODEL: any GGUF pi-server takes (-m converts it once into a cached .pi beside it), e.g.
#   build/bin/pi-synth --shape llama-7b --dtype q4_0 --seed 1 -o llama-7b.pi --gguf llama-7b.gguf
# or, for a quick check, a small shape such as
#   --shape custom:d=512,ff=1376,layers=4,heads=8,vocab=32000
# Needs curl and jq. Server logs go to a temporary directory, printed when a server fails.
set -euo pipefail

model="" threads=$(nproc) tokens=64 clients="1 2 4 8" rounds=3 ctx=512 port=18480
bin="$(cd "$(dirname "$0")/../.." && pwd)/build/bin"
while (($#)); do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -n) tokens="$2"; shift 2 ;;
    -c) ctx="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "serve_bench.sh: -m MODEL.gguf is required (see --help)" >&2; exit 2; }
[[ -f "$model" ]] || { echo "serve_bench.sh: $model does not exist" >&2; exit 1; }
[[ -x "$bin/pi-server" ]] || { echo "serve_bench.sh: $bin/pi-server is missing (--bin)" >&2; exit 1; }
for tool in curl jq; do
  command -v "$tool" > /dev/null || { echo "serve_bench.sh: $tool is required" >&2; exit 1; }
done
llama="${LLAMA_CPP_DIR:-}"
if [[ -n "$llama" && ! -x "$llama/bin/llama-server" ]]; then
  echo "serve_bench.sh: $llama/bin/llama-server is missing (LLAMA_CPP_DIR)" >&2
  exit 1
fi

script=serve_bench.sh
# shellcheck source=server_common.sh
source "$(dirname "$0")/server_common.sh"

stop() {
  kill "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

# One round against the server on port $1 with $2 clients: prints "tokens seconds".
round() {
  local p="$1" n="$2" start end i clients_pids=()
  start=$(date +%s.%N)
  for ((i = 0; i < n; ++i)); do
    curl -s "http://127.0.0.1:$p/v1/completions" -H 'Content-Type: application/json' \
      -d "{\"prompt\": \"Client $i says once upon a time\", \"max_tokens\": $tokens, \
           \"temperature\": 0}" > "$work/reply.$p.$i" &
    clients_pids+=($!)
  done
  wait "${clients_pids[@]}" || true
  end=$(date +%s.%N)
  local sum=0 got
  for ((i = 0; i < n; ++i)); do
    got=$(jq -e '.usage.completion_tokens' "$work/reply.$p.$i" 2> /dev/null) || {
      echo "serve_bench.sh: a reply from port $p is not a completion:" >&2
      cat "$work/reply.$p.$i" >&2
      exit 1
    }
    sum=$((sum + got))
  done
  echo "$sum $(echo "$end - $start" | bc -l)"
}


echo "model $model, $threads threads, $tokens tokens per client, -c $ctx per slot," \
  "$rounds interleaved rounds, medians" >&2
results="$work/results.txt"
: > "$results"
for n in $clients; do
  "$bin/pi-server" -m "$model" -t "$threads" -c "$ctx" --parallel "$n" --port "$port" --quiet \
    --no-webui > "$work/pi-server.log" 2>&1 &
  pi_pid=$!
  pids+=("$pi_pid")
  wait_healthy "$port" "$pi_pid" "$work/pi-server.log"
  if [[ -n "$llama" ]]; then
    "$llama/bin/llama-server" -m "$model" -t "$threads" -c $((n * ctx)) -np "$n" \
      --port $((port + 1)) --host 127.0.0.1 > "$work/llama-server.log" 2>&1 &
    llama_pid=$!
    pids+=("$llama_pid")
    wait_healthy $((port + 1)) "$llama_pid" "$work/llama-server.log"
  fi
  : > "$work/pi.$n"
  : > "$work/llama.$n"
  for ((r = 1; r <= rounds; ++r)); do
    out=$(round "$port" "$n")
    read -r t s <<< "$out"
    echo "$t / $s" | bc -l >> "$work/pi.$n"
    line="N=$n round $r: pi-server $t tokens in $s s"
    if [[ -n "$llama" ]]; then
      out=$(round $((port + 1)) "$n")
      read -r t s <<< "$out"
      echo "$t / $s" | bc -l >> "$work/llama.$n"
      line="$line; llama-server $t tokens in $s s"
    fi
    echo "$line" >&2
  done
  stop "$pi_pid"
  if [[ -n "$llama" ]]; then stop "$llama_pid"; fi
  pi=$(median < "$work/pi.$n")
  if [[ -n "$llama" ]]; then
    ll=$(median < "$work/llama.$n")
    echo "$n $pi $ll" >> "$results"
  else
    echo "$n $pi" >> "$results"
  fi
done

one=$(awk 'NR == 1 {print $2}' "$results")
if [[ -n "$llama" ]]; then
  printf '| clients | pi-server tok/s | vs 1 client | llama-server tok/s | pi/llama |\n'
  printf '|---|---|---|---|---|\n'
  while read -r n pi ll; do
    printf '| %s | %.2f | %.2fx | %.2f | %.2fx |\n' "$n" "$pi" "$(echo "$pi / $one" | bc -l)" \
      "$ll" "$(echo "$pi / $ll" | bc -l)"
  done < "$results"
  echo
  npl=$(echo "$clients" | tr ' ' ',')
  echo "llama-batched-bench -npp 8 -ntg $tokens -npl $npl -t $threads:"
  "$llama/bin/llama-batched-bench" -m "$model" -t "$threads" -c $((8 * (8 + tokens) + 64)) \
    -npp 8 -ntg "$tokens" -npl "$npl" 2> /dev/null | grep '^|'
else
  printf '| clients | pi-server tok/s | vs 1 client |\n'
  printf '|---|---|---|\n'
  while read -r n pi; do
    printf '| %s | %.2f | %.2fx |\n' "$n" "$pi" "$(echo "$pi / $one" | bc -l)"
  done < "$results"
fi
