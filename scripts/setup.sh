#!/usr/bin/env bash
# Installs what pinfer needs to build, test and run on Debian 12. Idempotent: it only calls apt
# when a package is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev libomp-dev   # clang: libFuzzer targets; OpenMP for the CPU kernels
  libabsl-dev libcli11-dev libzstd-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libsentencepiece-dev nlohmann-json3-dev libcpp-httplib-dev
  libpcre2-dev        # the pre-tokenizer regexes of byte-level BPE vocabularies (runtime/text)
  libtorch-dev        # pi-train-predictor only (CPU build in Debian)
  libopenblas0-openmp # the BLAS behind LibTorch's matrix products: without it Debian's libblas.so.3
                      # is the unoptimized reference BLAS, and pi-train-predictor runs several times slower
  coinor-libcbc-dev   # pi-place only
  curl jq             # the README examples (tests/readme) and the server tests
  nginx               # pi-server replicas behind a balancer (tests/server/replicas_test.cc)
  chromium chromium-driver   # the browser test of pi-server's chat page (tests/webui)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
