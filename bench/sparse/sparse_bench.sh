#!/usr/bin/env bash
# Speed and quality of the neuron-sparse CPU FFN, every ratio measured in one run.
#
#   bench/sparse/sparse_bench.sh [options]
#
# Speed: pi-synth writes a model at 7B width (d=4096, ff=11008; --layers, default 4, so that it
# fits this machine's memory and time) with planted 10% FFN density, for each dtype (q4_0 and f16
# by default), and pi-sparse-bench times the decode FFN dense against sparse (the planted
# selection, i.e. a perfect predictor) in one run, with the bytes read per token, the effective
# GB/s and the machine's read peak. The synthetic models are written under a temporary directory
# and deleted afterwards.
#
# Quality: perplexity on tests/data/text/tinystories_valid_head.txt of
#   - relu-llama-260k dense, oracle sparse (true activations), and predictor sparse when
#     pi-train-predictor is built (or TRAINER names it; the predictor is trained here, on the
#     profile's samples of the first 16000 tokens of the same text: train and test overlap);
#   - stories260K (SiLU) dense, and with thresholds calibrated to 40% and 60% sparsity (oracle:
#     the thresholded model itself; predictor when built).
# Perplexity evaluates batches of -b tokens (default 256) and a batch computes the union of its
# tokens' predicted neurons, which hides most single-token misses; the "-b 1" rows evaluate one
# token per pass, as decode does, so each token gets only its own predicted neurons.
#
# Options: -t THREADS (default: all cores)  --layers N (4)  --dtypes "q4_0 f16"  -n TOKENS (16)
#          --skip-speed  --skip-quality  --build DIR (default build/)
# Example:
#   bench/sparse/sparse_bench.sh -t 2
set -euo pipefail

threads=$(nproc)
layers=4
dtypes="q4_0 f16"
tokens=16
speed=1
quality=1
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
while (($#)); do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    --dtypes) dtypes="$2"; shift 2 ;;
    -n) tokens="$2"; shift 2 ;;
    --skip-speed) speed=0; shift ;;
    --skip-quality) quality=0; shift ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sparse_bench.sh: error: unknown argument $1" >&2; exit 1 ;;
  esac
done
bin="$build/bin"
for tool in pi-synth pi-sparse-bench pi-convert pi-run pi-profile; do
  if [[ ! -x "$bin/$tool" ]]; then
    echo "sparse_bench.sh: error: $bin/$tool is not built (scripts/build.sh)" >&2
    exit 1
  fi
done
work=$(mktemp -d /tmp/sparse_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ((speed)); then
  for dtype in $dtypes; do
    echo "== speed: 7B-width synthetic model, $layers layers, $dtype, planted density 0.1"
    "$bin/pi-synth" --shape "custom:d=4096,ff=11008,layers=$layers,heads=32,vocab=32000" \
        --dtype "$dtype" --locality power-law:alpha=1.5,hot=0.04,density=0.1 -t "$threads" \
        -o "$work/synth-$dtype.pi" >/dev/null 2>&1
    "$bin/pi-sparse-bench" -m "$work/synth-$dtype.pi" -n "$tokens" -r 3 -t "$threads"
    rm -f "$work/synth-$dtype.pi"
  done
fi

if ((quality)); then
  text="$root/tests/data/text/tinystories_valid_head.txt"
  ppl() {  # model, context, extra flags... -> the final PPL
    "$bin/pi-run" -m "$1" --perplexity "$text" -c "$2" -t "$threads" "${@:3}" 2>"$work/err" |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p'
  }
  density() { sed -n 's/.*mean selected density \([0-9.]*\).*/\1/p' "$work/err"; }
  "$bin/pi-convert" "$root/models/relu-llama-260k/model_q80.bin" \
      --tokenizer "$root/models/relu-llama-260k/tok1024.bin" \
      --ffn-act shifted_relu:0.25 --norm-act shifted_relu:1.0 -o "$work/relu.pi" >/dev/null 2>&1
  "$bin/pi-convert" "$root/models/stories260K/stories260K.bin" \
      --tokenizer "$root/models/stories260K/tok512.bin" -o "$work/stories.pi" >/dev/null 2>&1
  printf '\n== quality: perplexity on tinystories_valid_head.txt (-c: the training context)\n'
  printf '%-44s %10s %16s\n' "model / FFN" "PPL" "selected density"
  dense=$(ppl "$work/relu.pi" 64 --dense)
  printf '%-44s %10s %16s\n' "relu-llama-260k dense" "$dense" "1"
  oracle=$(ppl "$work/relu.pi" 64 --oracle-sparse)
  printf '%-44s %10s %16s\n' "relu-llama-260k sparse (oracle)" "$oracle" "$(density)"
  trainer=${TRAINER:-"$bin/pi-train-predictor"}
  have_trainer=0
  [[ -x "$trainer" ]] && have_trainer=1
  train() {  # model -> model.predictor.pi beside it (from its profile's samples)
    "$bin/pi-profile" -m "$1" --dataset "$text" --dump-samples --max-tokens 16000 -c "$2" \
        -t "$threads" -q "${@:3}" >/dev/null
    "$trainer" -m "$1" -t "$threads" -q >/dev/null 2>&1
  }
  if ((have_trainer)); then
    train "$work/relu.pi" 64
    predicted=$(ppl "$work/relu.pi" 64 --sparse-mode predictor)
    printf '%-44s %10s %16s\n' "relu-llama-260k sparse (predictor)" "$predicted" "$(density)"
    predicted=$(ppl "$work/relu.pi" 64 -b 1 --sparse-mode predictor)
    printf '%-44s %10s %16s\n' "relu-llama-260k sparse (predictor, -b 1)" "$predicted" \
        "$(density)"
  fi
  dense=$(ppl "$work/stories.pi" 256 --dense)
  printf '%-44s %10s %16s\n' "stories260K dense" "$dense" "1"
  for sparsity in 0.4 0.6; do
    "$bin/pi-profile" -m "$work/stories.pi" --dataset "$text" --target-sparsity "$sparsity" \
        --max-tokens 16000 -c 256 -t "$threads" -q >/dev/null
    oracle=$(ppl "$work/stories.pi" 256 --oracle-sparse)
    printf '%-44s %10s %16s\n' "stories260K calibrated $sparsity (oracle)" "$oracle" "$(density)"
    if ((have_trainer)); then
      train "$work/stories.pi" 256 --target-sparsity "$sparsity"
      predicted=$(ppl "$work/stories.pi" 256 --sparse-mode predictor)
      printf '%-44s %10s %16s\n' "stories260K calibrated $sparsity (predictor)" "$predicted" \
          "$(density)"
      predicted=$(ppl "$work/stories.pi" 256 -b 1 --sparse-mode predictor)
      printf '%-44s %10s %16s\n' "stories260K calibrated $sparsity (predictor, -b 1)" \
          "$predicted" "$(density)"
      rm -f "$work/stories.predictor.pi"
    fi
  done
fi
