#!/usr/bin/env bash
# Makes the activation predictor of a .pi model in one step: pi-profile over a text dataset (with
# predictor training samples), then pi-train-predictor. Everything is written beside the model:
#   MODEL.profile.pi, MODEL.profile.svg, MODEL.samples.zst, MODEL.predictor.pi
#
# Usage: scripts/make_predictor.sh MODEL.pi DATASET [pi-train-predictor flags...]
#        scripts/make_predictor.sh --version (the versions of the two tools)
#   e.g. scripts/make_predictor.sh demo/relu-llama-260k.pi tests/data/text/tinystories_valid_head.txt
#        scripts/make_predictor.sh relu.pi stories.txt --rank 128 --dtype q8_0
# Environment:
#   PINFER_BIN       where pi-profile and pi-train-predictor are (default: build/bin of this checkout)
#   PROFILE_TOKENS   tokens to profile and train on (default 16000)
#   THREADS          CPU threads of both tools (default 1: the result is then the same bytes on
#                    every run and machine of this build; more threads train faster)
#   SEED             the trainer's seed (default 1)
# Without extra flags the trainer uses --rank auto. The model must have an FFN whose activation
# gives exact zeros (relu family) or thresholds calibrated by pi-profile (silu/gelu models).
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ $# -ge 1 && ( "$1" == "-h" || "$1" == "--help" ) ]]; then
  usage
  exit 0
fi
bin=${PINFER_BIN:-"$(cd "$(dirname "$0")/.." && pwd)/build/bin"}
if [[ $# -ge 1 && "$1" == "--version" ]]; then
  # The script has no version of its own: the tools it runs do.
  "$bin/pi-profile" --version && "$bin/pi-train-predictor" --version
  exit
fi
if [[ $# -lt 2 ]]; then
  usage >&2
  exit 2
fi
model=$1
dataset=$2
shift 2
tokens=${PROFILE_TOKENS:-16000}
threads=${THREADS:-1}
seed=${SEED:-1}
for tool in pi-profile pi-train-predictor; do
  if [[ ! -x "$bin/$tool" ]]; then
    echo "make_predictor.sh: error: $bin/$tool not found (build with scripts/build.sh, or set PINFER_BIN)" >&2
    exit 1
  fi
done
base=${model%.pi}
SECONDS=0

echo "== profiling $model over $dataset ($tokens tokens)" >&2
"$bin/pi-profile" -m "$model" --dataset "$dataset" --max-tokens "$tokens" --dump-samples \
  -t "$threads" -q >&2

echo "== training the predictor" >&2
"$bin/pi-train-predictor" -m "$model" -t "$threads" --seed "$seed" -q "$@" >&2

echo "make_predictor.sh: wrote $base.predictor.pi (with $base.profile.pi and $base.samples.zst) in ${SECONDS} s"
