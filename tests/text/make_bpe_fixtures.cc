// Writes the byte-level BPE fixtures of tests/data/bpe (see its README): for each family
// <out>/<family>/vocab.gguf and tokenizer.json, learnt from the bundled text, and the corpus
// excerpts whose llama.cpp ids are golden as <out>/excerpts/<corpus>.txt.
//   make_bpe_fixtures OUT_DIR
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/convert/test_util.h"
#include "tests/text/bpe_fixture.h"

namespace pinfer::testing {
namespace {

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_bpe_fixtures OUT_DIR\n");
    return 1;
  }
  namespace fs = std::filesystem;
  const fs::path out = argv[1];
  const std::string corpus = BpeTrainingCorpus();
  for (const std::string& family : BpeFixtureFamilies()) {
    absl::StatusOr<BpeFixture> fixture = TrainBpeFixture(family, corpus, kBpeFixtureMerges);
    if (!fixture.ok()) {
      std::fprintf(stderr, "make_bpe_fixtures: %s: %s\n", family.c_str(),
                   std::string(fixture.status().message()).c_str());
      return 1;
    }
    fs::create_directories(out / family);
    WriteFileBytes((out / family / "vocab.gguf").string(), BpeFixtureGguf(*fixture));
    WriteFileText((out / family / "tokenizer.json").string(),
                  BpeFixtureTokenizerJson(*fixture).dump(1) + "\n");
    std::printf("%s: %zu tokens, %zu merges\n", family.c_str(), fixture->pieces.size(),
                fixture->merges.size());
  }
  fs::create_directories(out / "excerpts");
  for (const std::string& name : BpeGoldenCorpora()) {
    WriteFileText((out / "excerpts" / (name + ".txt")).string(), BpeGoldenExcerpt(name));
  }
  return 0;
}

}  // namespace
}  // namespace pinfer::testing

int main(int argc, char** argv) { return pinfer::testing::Main(argc, argv); }
