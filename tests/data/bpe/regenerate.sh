#!/usr/bin/env bash
# Regenerates tests/data/bpe (see README.md): our own byte-level BPE vocabularies, learnt by
# make_bpe_fixtures from the bundled text, and llama.cpp's token ids for them.
#   LLAMA_CPP_DIR=/path/to/llama.cpp tests/data/bpe/regenerate.sh [BUILD_DIR]
# BUILD_DIR (default: build) must hold bin/make_bpe_fixtures; LLAMA_CPP_DIR must hold
# build/bin/llama-tokenize.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../../build}
tokenize=${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp checkout with build/bin/llama-tokenize}/build/bin/llama-tokenize
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bin/make_bpe_fixtures" "$tmp"
python3 - "$here" "$tmp" "$tokenize" <<'PY'
import os, shutil, subprocess, sys

here, tmp, tokenize = sys.argv[1:]
separator = b"\n__ggml_vocab_test__\n"
cases = open(os.path.join(here, "hard_strings.txt"), "rb").read().split(separator)[:-1]

def ids(gguf, text_path, *flags):
    # --no-escape: the text as it is; vocab-only load; ids as [1, 2, 3] on the last line.
    out = subprocess.run([tokenize, "-m", gguf, "-f", text_path, "--ids", "--no-escape",
                          "--log-disable", *flags], check=True, capture_output=True).stdout
    line = out.decode().strip().splitlines()[-1]
    assert line.startswith("[") and line.endswith("]"), line
    return " ".join(x.strip() for x in line[1:-1].split(",") if x.strip())

families = sorted(d for d in os.listdir(tmp) if d != "excerpts")
for family in families:
    dest = os.path.join(here, family)
    os.makedirs(dest, exist_ok=True)
    for name in ("vocab.gguf", "tokenizer.json"):
        shutil.copyfile(os.path.join(tmp, family, name), os.path.join(dest, name))
    gguf = os.path.join(dest, "vocab.gguf")
    for out_name, flags in (("hard_strings.ids", ()),
                            ("hard_strings_plain.ids", ("--no-bos", "--no-parse-special"))):
        lines = []
        for i, case in enumerate(cases):
            path = os.path.join(tmp, "case.txt")
            open(path, "wb").write(case)
            lines.append(ids(gguf, path, *flags))
        open(os.path.join(dest, out_name), "w").write("\n".join(lines) + "\n")
    for excerpt in sorted(os.listdir(os.path.join(tmp, "excerpts"))):
        corpus = excerpt[:-len(".txt")]
        line = ids(gguf, os.path.join(tmp, "excerpts", excerpt))
        open(os.path.join(dest, corpus + ".ids"), "w").write(line + "\n")
    print(family, "done")
PY
