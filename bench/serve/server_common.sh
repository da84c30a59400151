# Sourced by the serving benchmarks (serve_bench.sh, prompt_cache_bench.sh): a work directory and
# the servers started, removed and stopped at exit, the wait for a server's /health, and medians.
# The sourcing script sets `script` (its name, for messages) first.

work=$(mktemp -d)
pids=()  # the servers started (add each one's pid)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for GET /health on port $1 to answer 200 (a server loading a model answers 503
# meanwhile); exits with the server's log $3 when the server $2 exits or never becomes healthy.
wait_healthy() {
  local p="$1" pid="$2" log="$3"
  for _ in $(seq 1 3000); do
    if ! kill -0 "$pid" 2> /dev/null; then
      echo "$script: the server on port $p exited; its log:" >&2
      cat "$log" >&2
      exit 1
    fi
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/health")" == 200 ]]; then
      return 0
    fi
    sleep 0.2
  done
  echo "$script: the server on port $p did not become healthy; its log:" >&2
  cat "$log" >&2
  exit 1
}

# The median of the numbers on stdin, one a line.
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
