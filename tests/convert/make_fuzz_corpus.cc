// Writes the seed corpus of the libFuzzer targets (tests/fuzz/corpus/) and the fixed model the
// artifact targets check against (tests/fuzz/data/): small but complete files that reach every
// part of each parser. Usage: make_fuzz_corpus tests/fuzz
#include <cstdio>
#include <filesystem>

#include "tests/convert/fuzz_corpus.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus tests/fuzz\n");
    return 2;
  }
  const fs::path dir = argv[1];
  const fs::path tmp = fs::temp_directory_path() / "pinfer_fuzz_corpus";
  fs::create_directories(tmp);
  pinfer::testing::WriteFormatSeeds(dir / "corpus", tmp);
  pinfer::testing::WriteArtifactSeeds(dir, tmp);
  pinfer::testing::WriteSourceSeeds(dir / "corpus", tmp);
  fs::remove_all(tmp);
  return 0;
}
