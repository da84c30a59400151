#!/usr/bin/env bash
# Builds the pinfer programs (not the tests: scripts/build.sh --tools), converts the two bundled
# models and lets them tell a story (greedy decoding), measures a perplexity, then runs the
# activation-locality pipeline on the ReLU model in one command (pi-prepare: profile, predictor and
# a placement plan for a VRAM budget), neuron-sparse CPU execution checked against the true
# activations, dense against sparse perplexity, and the hybrid run of the plan. Everything is
# written to demo/ (ignored by git: /demo/ in .gitignore).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building the programs (scripts/build.sh --tools)"
scripts/build.sh --tools
bin=build/bin
mkdir -p demo

echo
echo "== converting the bundled models to .pi"
"$bin/pi-convert" models/stories260K/stories260K.bin --tokenizer models/stories260K/tok512.bin \
  -o demo/stories260K.pi -q
"$bin/pi-convert" models/relu-llama-260k/model_q80.bin --tokenizer models/relu-llama-260k/tok1024.bin \
  --ffn-act shifted_relu:0.25 --norm-act shifted_relu:1.0 -o demo/relu-llama-260k.pi -q

run() {
  echo
  echo "\$ $bin/pi-run $(printf '%q ' "$@")"
  "$bin/pi-run" "$@"
}

echo
echo "== stories260K (SwiGLU Llama), greedy, 48 tokens after the prompt"
run -m demo/stories260K.pi -p "Once upon a time" -n 48 --temp 0

echo
echo "== relu-llama-260k (shifted-ReLU Llama, 77% of its FFN neurons are zero), from BOS"
run -m demo/relu-llama-260k.pi -n 60 --temp 0

echo
echo "== sampling: temperature 0.8, top-p 0.9, fixed seed"
run -m demo/stories260K.pi -p "The little dog" -n 48 --temp 0.8 --top-p 0.9 --seed 42

echo
echo "== perplexity of stories260K on TinyStories (llama.cpp's method; llama.cpp: 3.8233)"
run -m demo/stories260K.pi --perplexity tests/data/text/tinystories_valid_head.txt -c 256 --chunks 40

relu=demo/relu-llama-260k.pi
echo
echo "== activation locality in one command: profile relu-llama-260k on TinyStories, train its"
echo "   predictor and place it for a 3900K VRAM budget (pi-prepare)"
echo "\$ $bin/pi-prepare -m $relu --dataset tests/data/text/tinystories_valid_head.txt --vram 3900K"
"$bin/pi-prepare" -m "$relu" --dataset tests/data/text/tinystories_valid_head.txt --vram 3900K

echo
echo "== sparse CPU execution: only the predicted-active FFN neurons, checked against the true ones"
run -m "$relu" -n 60 --temp 0 --check

echo
echo "== quality cost of sparsity: perplexity dense, then sparse (the predictor beside the model)"
run -m "$relu" --dense --perplexity tests/data/text/tinystories_valid_head.txt -c 64 --chunks 100 -b 1
run -m "$relu" --perplexity tests/data/text/tinystories_valid_head.txt -c 64 --chunks 100 -b 1

echo
echo "== the hybrid run of the plan (without a GPU its GPU part runs on the CPU, and says so)"
run -m "$relu" -n 60 --temp 0 --plan demo/relu-llama-260k.plan.pi
