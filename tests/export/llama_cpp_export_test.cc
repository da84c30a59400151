// pi-export --format llama.cpp: export then pi-convert gives the same tensors, and llama.cpp's
// greedy text on the export is pi-run's (when LLAMA_CPP_DIR names a llama.cpp build).
#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "runtime/model/model_config.h"
#include "tests/export/export_test_util.h"
#include "tests/model/opt_fixture.h"
#include "tests/runtime/test_models.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

std::string Scratch(const std::string& name) {
  const fs::path dir = fs::path(test::ScratchDir()) / "llama_cpp_export";
  fs::create_directories(dir);
  return (dir / name).string();
}

TEST(LlamaCppExportTest, ExportThenConvertGivesIdenticalTensors) {
  // stories260K as stored (f32), and converted to f16 by pi-convert.
  const std::string model = test::ConvertedModel(BundledModel::kStories260K);
  test::ProgramResult r = PiExport({"-m", model, "-o", Scratch("keep.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(PiConvert({Scratch("keep.gguf"), "-o", Scratch("keep.pi")}).exit_code, 0);
  std::unique_ptr<PiFile> original = OpenPi(model), again = OpenPi(Scratch("keep.pi"));
  ASSERT_TRUE(original && again);
  ExpectSameTensors(*original, *again);

  const std::string f16 = test::ConvertedModel(BundledModel::kStories260K, DType::kF16);
  r = PiExport({"-m", model, "--dtype", "f16", "-o", Scratch("f16.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(PiConvert({Scratch("f16.gguf"), "-o", Scratch("f16.pi")}).exit_code, 0);
  std::unique_ptr<PiFile> f16_original = OpenPi(f16), f16_again = OpenPi(Scratch("f16.pi"));
  ASSERT_TRUE(f16_original && f16_again);
  ExpectSameTensors(*f16_original, *f16_again);

  // q8_0: the matrices whose rows are whole blocks are q8_0; ffn_down (rows of n_ff = 172) is f16.
  r = PiExport({"-m", model, "--dtype", "q8_0", "-o", Scratch("q8.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "blk.0.ffn_down.weight")) << r.out;
  ASSERT_EQ(PiConvert({Scratch("q8.gguf"), "-o", Scratch("q8.pi")}).exit_code, 0);
  std::unique_ptr<PiFile> q8 = OpenPi(Scratch("q8.pi"));
  ASSERT_TRUE(q8);
  EXPECT_EQ(q8->Find("blk.0.attn_q")->dtype, DType::kQ8_0);
  EXPECT_EQ(q8->Find("blk.0.ffn_down_t")->dtype, DType::kF16);
}

// RoPE scaling (Llama 3's per-pair divisors, or linear) goes out as llama.cpp's rope_freqs tensor
// and comes back through pi-convert as the same factors; without it a scaled model would run
// unscaled in llama.cpp.
TEST(LlamaCppExportTest, RopeScalingTravelsAsRopeFreqs) {
  const std::string model = test::ConvertedModel(BundledModel::kStories260K);
  const std::string scaled = Scratch("scaled.pi");
  const std::vector<float> factors = {1.0f, 1.5f, 4.0f, 8.0f};  // head_dim 8: 4 pairs
  ASSERT_TRUE(test::RewriteModel(model, scaled, [&](Metadata& m) {
                m.SetFloatArray("llama.rope_freq_factors", factors);
              }).ok());
  test::ProgramResult r = PiExport({"-m", scaled, "-o", Scratch("scaled.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(PiConvert({Scratch("scaled.gguf"), "-o", Scratch("scaled-again.pi")}).exit_code, 0);
  std::unique_ptr<PiFile> again = OpenPi(Scratch("scaled-again.pi"));
  ASSERT_TRUE(again);
  absl::StatusOr<ModelConfig> config = ModelConfig::FromMetadata(again->metadata());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_freq_factors, factors);
  // An unscaled model gets no rope_freqs.
  ASSERT_EQ(PiExport({"-m", model, "-o", Scratch("plain.gguf")}).exit_code, 0);
  ASSERT_EQ(PiConvert({Scratch("plain.gguf"), "-o", Scratch("plain-again.pi")}).exit_code, 0);
  std::unique_ptr<PiFile> plain = OpenPi(Scratch("plain-again.pi"));
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->metadata().Has("llama.rope_freq_factors"));
}

// llama.cpp has no OPT (Falcon's export: gguf_family_test.cc).
TEST(LlamaCppExportTest, OptIsRefused) {
  const OptModel opt = WriteOptModel(Scratch("opt-hf"));
  ASSERT_EQ(PiConvert({opt.dir, "-o", Scratch("opt.pi")}).exit_code, 0);
  ExpectOneLineError(PiExport({"-m", Scratch("opt.pi"), "-o", Scratch("opt.gguf")}), "pi-export",
                     "architecture 'opt': llama.cpp has no OPT architecture");
  EXPECT_FALSE(fs::exists(Scratch("opt.gguf")));
}

TEST(LlamaCppExportTest, BadFlagsAreOneLineErrors) {
  const std::string model = test::ConvertedModel(BundledModel::kStories260K);
  ExpectOneLineError(PiExport({"-m", model, "--dtype", "q5_k", "-o", Scratch("x.gguf")}),
                     "pi-export", "--dtype must be");
  ExpectOneLineError(PiExport({"-m", model, "--format", "exl2", "-o", Scratch("x.gguf")}),
                     "pi-export", "--format must be");
  ExpectOneLineError(PiExport({"-m", model, "-o", model}), "pi-export", "would overwrite");
  ExpectOneLineError(PiExport({"-m", Scratch("missing.pi"), "-o", Scratch("x.gguf")}), "pi-export",
                     "missing.pi");
  EXPECT_FALSE(fs::exists(Scratch("x.gguf")));
}

// llama.cpp's llama-cli in LLAMA_CPP_DIR (or its build/bin); "" when not set (CI).
std::string LlamaCli() {
  const char* dir = std::getenv("LLAMA_CPP_DIR");
  if (dir == nullptr || *dir == 0) return "";
  for (const char* sub : {"", "build/bin", "bin"}) {
    const fs::path p = fs::path(dir) / sub / "llama-cli";
    if (fs::exists(p)) return p.string();
  }
  return "";
}

TEST(LlamaCppExportTest, LlamaCppGreedyTextEqualsPiRun) {
  const std::string cli = LlamaCli();
  if (cli.empty()) GTEST_SKIP() << "LLAMA_CPP_DIR is not set to a llama.cpp build with llama-cli";
  const std::string model = test::ConvertedModel(BundledModel::kStories260K);
  ASSERT_EQ(PiExport({"-m", model, "-o", Scratch("text.gguf")}).exit_code, 0);
  const std::string prompt = "Once upon a time";
  test::ProgramResult ours =
      PiRun({"-m", model, "-p", prompt, "-n", "32", "--temp", "0", "-t", "1"});
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  test::ProgramResult theirs =
      test::RunProgram(cli, {"-m", Scratch("text.gguf"), "-p", prompt, "-n", "32", "--temp", "0",
                             "-t", "1", "-no-cnv", "--no-warmup", "--simple-io"});
  ASSERT_EQ(theirs.exit_code, 0) << theirs.err;
  EXPECT_GT(ours.out.size(), prompt.size() + 40);
  // llama-cli prints the prompt after a leading space (SentencePiece's prefix) and a newline or
  // "[end of text]" at the end; pi-run the prompt and the continuation.
  EXPECT_EQ(absl::StripAsciiWhitespace(theirs.out), absl::StripAsciiWhitespace(ours.out));
}

}  // namespace
}  // namespace pinfer::testing
