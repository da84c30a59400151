// An independent check of the falcon layout that pi-export writes and pi-convert reads (they could
// agree on a wrong one): llama.cpp itself ran the exported GGUF of a seeded tiny Falcon-7B fixture
// and its greedy tokens and top probabilities are golden data (tests/data/falcon-gguf/, with the
// commit, flags and commands). Here the same GGUF is made again (its XXH3 digest must be the
// recorded one), then pi-run's conversion of it must give llama.cpp's greedy tokens and, within
// llama.cpp's precision (tanh-approximated GELU through an f16 table, f16 KV cache), its
// probabilities; pi-run's greedy text on the GGUF must be llama-cli's.
//
// Both layouts: Falcon-7B's and Falcon-40B's (attn_norm_2, grouped key/value heads).
// Regenerating (after a deliberate change of the fixture or the export): run this test with
// PINFER_WRITE_FALCON_GGUF=DIR to get the GGUFs, then the commands of tests/data/falcon-gguf/
// README.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "format/checksum.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/gguf_family_fixture.h"
#include "tests/convert/test_util.h"
#include "tests/export/export_test_util.h"
#include "tests/model/falcon_fixture.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

std::string Scratch(const std::string& name) {
  const fs::path dir = fs::path(test::ScratchDir()) / "llama_cpp_golden";
  fs::create_directories(dir);
  return (dir / name).string();
}

struct Golden {
  const char* name;  // of the fixture directory (the GGUF's general.name) and of the GGUF
  FalconSpec spec;
  const char* file;  // under tests/data/falcon-gguf/
};

void PrintTo(const Golden& g, std::ostream* os) { *os << g.name; }

class LlamaCppGoldenTest : public ::testing::TestWithParam<Golden> {};

TEST_P(LlamaCppGoldenTest, PiRunOnTheExportedFalconGgufGivesLlamaCppsTokens) {
  // The fixture llama.cpp ran (seeded, f32).
  const Golden& g = GetParam();
  const FalconModel hf = WriteFalconModel(Scratch(g.name), g.spec);
  ASSERT_EQ(PiConvert({hf.dir, "-o", Scratch("falcon.pi")}).exit_code, 0);
  test::ProgramResult r = PiExport({"-m", Scratch("falcon.pi"), "-o", Scratch("falcon.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<uint8_t> gguf = ReadFileBytes(Scratch("falcon.gguf"));
  if (const char* dir = std::getenv("PINFER_WRITE_FALCON_GGUF"); dir != nullptr && *dir != 0) {
    WriteFileBytes(std::string(dir) + "/" + g.name + ".gguf", gguf);
  }
  std::ifstream in(RepoPath(std::string("tests/data/falcon-gguf/") + g.file));
  ASSERT_TRUE(in.good());
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_EQ(ChecksumHex(Checksum(gguf)), golden["gguf_xxh3"].get<std::string>())
      << "the exported fixture is no longer the GGUF llama.cpp ran: regenerate the golden data "
         "(see the header)";

  // pi-run's model of that GGUF (the conversion it caches), fed llama.cpp's prompt tokens.
  ASSERT_EQ(PiConvert({Scratch("falcon.gguf"), "-o", Scratch("again.pi")}).exit_code, 0);
  cpu::SetThreads(1);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(Scratch("again.pi"));
  ASSERT_TRUE(model.ok()) << model.status();
  Executor executor(**model);
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 64, .cache_type = DType::kF32});
  ASSERT_TRUE(session.ok()) << session.status();
  const std::vector<int32_t> prompt = golden["prompt_ids"].get<std::vector<int32_t>>();
  const int64_t vocab = (*model)->config().vocab_size;
  double worst = 0;
  // Our argmax must be llama.cpp's, and our probabilities of its top tokens its own.
  auto compare = [&](std::span<const float> logits, const nlohmann::json& step,
                     const std::string& what) {
    const float top = *std::max_element(logits.begin(), logits.end());
    double total = 0;
    for (float l : logits) total += std::exp(static_cast<double>(l) - top);
    const int32_t ours =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(ours, step["id"].get<int32_t>()) << what;
    for (const nlohmann::json& p : step["top"]) {
      const double prob =
          std::exp(static_cast<double>(logits[p["id"].get<int32_t>()]) - top) / total;
      worst = std::max(worst, std::fabs(prob - p["prob"].get<double>()));
    }
    return ours;
  };
  // The next-token distribution after every prefix of the prompt, in one batch.
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const nlohmann::json& prefixes = golden["prefix_steps"];
  ASSERT_EQ(prefixes.size(), prompt.size());
  std::vector<float> all(logits->begin(), logits->end());
  int32_t next = 0;
  for (size_t k = 0; k < prompt.size(); ++k) {
    next = compare(std::span<const float>(all.data() + k * vocab, vocab), prefixes[k],
                   "after " + std::to_string(k + 1) + " prompt tokens");
  }
  // Then the greedy continuation, token by token.
  const nlohmann::json& steps = golden["steps"];
  EXPECT_EQ(next, steps[0]["id"].get<int32_t>());
  std::vector<int32_t> greedy = {next};
  for (size_t i = 1; i < steps.size(); ++i) {
    logits = (*session)->Evaluate(std::span<const int32_t>(&greedy.back(), 1), Logits::kLast);
    ASSERT_TRUE(logits.ok()) << logits.status();
    greedy.push_back(compare(*logits, steps[i], "greedy step " + std::to_string(i)));
  }
  EXPECT_LE(worst, golden["prob_tolerance"].get<double>());
  std::printf("largest probability difference from llama.cpp: %.2e\n", worst);

  // pi-run on the GGUF itself: llama-cli's greedy text.
  const std::string& text = golden["cli_prompt"].get_ref<const std::string&>();
  r = PiRun({"-m", Scratch("falcon.gguf"), "-p", text, "-n",
             std::to_string(golden["cli_n_predict"].get<int>()), "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // (Bytes: a random model's text need not be UTF-8.)
  const std::vector<uint8_t> cli = golden["cli_output_bytes"].get<std::vector<uint8_t>>();
  EXPECT_EQ(absl::StripAsciiWhitespace(r.out),
            absl::StripAsciiWhitespace(std::string(cli.begin(), cli.end())));
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, LlamaCppGoldenTest,
    ::testing::Values(Golden{"falcon-7b-tiny", Falcon7BLayout(), "llama_cpp_greedy.json"},
                      Golden{"falcon-40b-tiny", Falcon40BLayout(), "llama_cpp_greedy_40b.json"}),
    [](const ::testing::TestParamInfo<Golden>& p) {
      return p.param.spec.new_decoder_architecture ? "Falcon40B" : "Falcon7B";
    });

}  // namespace
}  // namespace pinfer::testing
