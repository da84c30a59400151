#!/usr/bin/env bash
# bench/sparse/decode_modes.sh on a gate-less model: a small OPT written by pi-synth --arch opt
# decodes in every mode, and exact selection reads fewer bytes per token than dense (10% planted
# density: the fc2 rows of the neurons that do not fire are skipped).
#   tests/synth/decode_modes_opt_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir="$1" build_dir="$2"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build_dir/bin/pi-synth" --shape custom:d=256,ff=1024,layers=3,heads=4,vocab=512,ctx=256 \
  --arch opt --dtype q8_0 --seed 5 -o "$work/opt.pi" -q
"$source_dir/bench/sparse/decode_modes.sh" "$work/opt.pi" --build "$build_dir" -t 1 -n 8 \
  --runs 1 >"$work/table.txt" 2>"$work/err.txt" || { cat "$work/err.txt"; exit 1; }
cat "$work/table.txt"
for mode in dense exact auto; do
  grep -q "^$mode " "$work/table.txt" || { echo "no $mode row"; exit 1; }
done
# Column 6 is the bytes per token relative to dense.
awk '$1 == "exact" { exit !($6 < 0.9) }' "$work/table.txt" ||
  { echo "exact selection did not read fewer bytes than dense"; exit 1; }
echo "decode_modes.sh ran on an OPT model"
