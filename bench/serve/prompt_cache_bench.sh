#!/usr/bin/env bash
# Time to first token of a follow-up chat turn, with the slot's prompt cache hit and missed, on
# pi-server (and llama-server with LLAMA_CPP_DIR set, whose cache_prompt is on by default).
#
#   bench/serve/prompt_cache_bench.sh -m MODEL [-t THREADS] [--system "64 256"] [--new "8 32 128"]
#                                     [--rounds R] [-c CTX] [--bin BUILD_BIN_DIR] [--port PORT]
#
# For every system-prompt length S (words of tests/data/text/tinyshakespeare.txt) and every
# follow-up length K (words): turn 1 is POST /v1/chat/completions with [system S words, user
# question], max_tokens 8, temperature 0. Turn 2 repeats the conversation with turn 1's reply and
# a user message of K words, max_tokens 1, so its time is the time to the first token:
#   hit:  right after turn 1, on the same slot (--parallel 1): the slot's cache holds turn 1;
#   miss: after an unrelated request has replaced the slot's cache.
# Each round measures hit and miss, alternating; the table gives the medians over --rounds, the
# prompt and cached tokens of turn 2 as the server reported them (usage.prompt_tokens and
# usage.prompt_tokens_details.cached_tokens; llama-server: prompt_tokens - timings.prompt_n), and
# hit / miss. With the cache, a hit's time follows the new tokens only (the prompt tokens minus
# the cached ones), where a miss pays for the whole prompt.
# MODEL: any model source pi-server takes (a .pi, a GGUF: converted once beside it). Needs curl
# and jq. Server logs go to a temporary directory, printed when a server fails.
set -euo pipefail

model="" threads=$(nproc) systems="64 256" news="8 32 128" rounds=3 ctx=2048 port=18490
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/build/bin"
text="$root/tests/data/text/tinyshakespeare.txt"
while (($#)); do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -c) ctx="$2"; shift 2 ;;
    --system) systems="$2"; shift 2 ;;
    --new) news="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "prompt_cache_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$model" ]] || { echo "prompt_cache_bench.sh: -m MODEL is required (see --help)" >&2; exit 2; }
[[ -e "$model" ]] || { echo "prompt_cache_bench.sh: $model does not exist" >&2; exit 1; }
[[ -x "$bin/pi-server" ]] || { echo "prompt_cache_bench.sh: $bin/pi-server is missing (--bin)" >&2; exit 1; }
[[ -f "$text" ]] || { echo "prompt_cache_bench.sh: $text is missing" >&2; exit 1; }
for tool in curl jq; do
  command -v "$tool" > /dev/null || { echo "prompt_cache_bench.sh: $tool is required" >&2; exit 1; }
done
llama="${LLAMA_CPP_DIR:-}"
if [[ -n "$llama" && ! -x "$llama/bin/llama-server" ]]; then
  echo "prompt_cache_bench.sh: $llama/bin/llama-server is missing (LLAMA_CPP_DIR)" >&2
  exit 1
fi

script=prompt_cache_bench.sh
# shellcheck source=server_common.sh
source "$(dirname "$0")/server_common.sh"

# Words [from, from + count) of the text, on one line, as a JSON string.
words() { tr -s ' \n\t' '\n' < "$text" | sed -n "$(($1 + 1)),$(($1 + $2))p" | paste -sd' ' | jq -Rs 'rtrimstr("\n")'; }

# POSTs the body in file $2 to port $1's chat endpoint; sets post_secs and post_out (the reply).
# Runs in the script's own shell (no command substitution), so that a failure ends the script.
post() {
  local p="$1" body="$2"
  post_out="$work/reply.$((++replies))"
  post_secs=$(curl -s -o "$post_out" -w '%{time_total}' "http://127.0.0.1:$p/v1/chat/completions" \
    -H 'Content-Type: application/json' --data-binary "@$body")
  jq -e '.choices[0].message' "$post_out" > /dev/null 2>&1 || {
    echo "prompt_cache_bench.sh: a reply from port $p is not a chat completion:" >&2
    cat "$post_out" >&2
    echo >&2
    exit 1
  }
}
replies=0

# Turn 1 (S system words) then turn 2 (K new words) on port $1; $4: hit or miss.
# Sets turn2_secs, turn2_prompt and turn2_cached (usage of turn 2).
follow_up() {
  local p="$1" s="$2" k="$3" mode="$4"
  local system question follow reply
  system=$(words 0 "$s")
  question='"Who speaks first, and what do they want?"'
  follow=$(words 5000 "$k")
  jq -n --argjson sys "$system" --argjson q "$question" \
    '{messages: [{role: "system", content: $sys}, {role: "user", content: $q}],
      max_tokens: 8, temperature: 0}' > "$work/turn1.json"
  post "$p" "$work/turn1.json"
  reply=$(jq '.choices[0].message.content' "$post_out")
  if [[ "$mode" == miss ]]; then  # an unrelated conversation takes the slot's cache
    jq -n --argjson u "$(words 9000 "$((s + 16))")" \
      '{messages: [{role: "user", content: $u}], max_tokens: 1, temperature: 0}' > "$work/other.json"
    post "$p" "$work/other.json"
  fi
  jq -n --argjson sys "$system" --argjson q "$question" --argjson a "$reply" --argjson f "$follow" \
    '{messages: [{role: "system", content: $sys}, {role: "user", content: $q},
                 {role: "assistant", content: $a}, {role: "user", content: $f}],
      max_tokens: 1, temperature: 0}' > "$work/turn2.json"
  post "$p" "$work/turn2.json"
  turn2_secs=$post_secs
  turn2_prompt=$(jq '.usage.prompt_tokens' "$post_out")
  turn2_cached=$(jq '.usage.prompt_tokens_details.cached_tokens // (if .timings.prompt_n then .usage.prompt_tokens - .timings.prompt_n else 0 end)' "$post_out")
}


"$bin/pi-server" -m "$model" -t "$threads" -c "$ctx" --parallel 1 --port "$port" --quiet \
  --no-webui > "$work/pi-server.log" 2>&1 &
pids+=($!)
wait_healthy "$port" "${pids[-1]}" "$work/pi-server.log"
servers=("pi-server:$port")
if [[ -n "$llama" ]]; then
  "$llama/bin/llama-server" -m "$model" -t "$threads" -c "$ctx" -np 1 --port $((port + 1)) \
    --host 127.0.0.1 > "$work/llama-server.log" 2>&1 &
  pids+=($!)
  wait_healthy $((port + 1)) "${pids[-1]}" "$work/llama-server.log"
  servers+=("llama-server:$((port + 1))")
fi

echo "model $model, $threads threads, -c $ctx, --parallel 1, $rounds rounds, medians" >&2
printf '| server | system words | new words | turn-2 prompt tokens | cached | TTFT hit (s) | TTFT miss (s) | hit / miss |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for s in $systems; do
  for k in $news; do
    for server in "${servers[@]}"; do : > "$work/hit.${server%%:*}"; : > "$work/miss.${server%%:*}"; done
    for ((r = 1; r <= rounds; ++r)); do
      for server in "${servers[@]}"; do
        name="${server%%:*}" p="${server##*:}"
        follow_up "$p" "$s" "$k" hit
        hs=$turn2_secs ht=$turn2_prompt hc=$turn2_cached
        follow_up "$p" "$s" "$k" miss
        echo "$hs" >> "$work/hit.$name"
        echo "$turn2_secs" >> "$work/miss.$name"
        echo "$hs $ht $hc" > "$work/last-hit.$name"
        echo "$name S=$s K=$k round $r: hit $hs s ($hc of $ht cached)," \
          "miss $turn2_secs s ($turn2_cached of $turn2_prompt cached)" >&2
      done
    done
    for server in "${servers[@]}"; do
      name="${server%%:*}"
      read -r _ ht hc < "$work/last-hit.$name"
      hit=$(median < "$work/hit.$name")
      miss=$(median < "$work/miss.$name")
      printf '| %s | %s | %s | %s | %s | %.3f | %.3f | %.2f |\n' "$name" "$s" "$k" "$ht" "$hc" \
        "$hit" "$miss" "$(awk -v h="$hit" -v m="$miss" 'BEGIN {print h / m}')"
    done
  done
done
