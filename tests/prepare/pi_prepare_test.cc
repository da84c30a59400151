// pi-prepare on relu-llama-260k: the artifacts are those of the separate stages, a rerun skips
// every stage without touching a file, a changed setting redoes only the stages from it on, a run
// killed mid-stage leaves no half artifact and the next run completes; an HF directory with a
// SentencePiece tokenizer.model converts in the same process as LibTorch.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "format/sample_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/convert/hf_fixture.h"
#include "tests/convert/test_util.h"
#include "tests/prepare/prepare_test_util.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using prepare_test::PrepareArgs;
using prepare_test::Snapshot;
using prepare_test::StageStatuses;
using testing::RunTool;
using testing::ScratchDir;
using testing::ToolResult;

nlohmann::json RunJson(const std::vector<std::string>& args) {
  std::vector<std::string> with_json = args;
  with_json.push_back("--json");
  const ToolResult r = RunTool("pi-prepare", with_json);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nlohmann::json::object({{"stages", nlohmann::json::array()}});
  return nlohmann::json::parse(r.out);
}

std::string ContentDigest(const std::string& path) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return "";
  EXPECT_TRUE((*file)->VerifyAll().ok()) << path;
  return (*file)->ContentDigestHex();
}

// A sample file's content without its metadata (which records the tool's arguments): the
// model, the shape and every frame's layer, count and checksum of the compressed samples.
std::string SamplesContent(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader = SampleFileReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return "";
  std::string content = absl::StrCat((*reader)->model_digest(), " ", (*reader)->n_layers(), "x",
                                     (*reader)->dim(), "x", (*reader)->n_ff());
  for (const SampleFrameInfo& frame : (*reader)->frames()) {
    absl::StrAppend(&content, " ", frame.layer, ":", frame.count, ":", frame.checksum);
  }
  EXPECT_GT((*reader)->frames().size(), 0u) << path;
  return content;
}

// The files of `dir` whose bytes or modification time differ between two snapshots.
std::vector<std::string> Changed(const std::map<std::string, prepare_test::FileState>& before,
                                 const std::map<std::string, prepare_test::FileState>& after) {
  std::vector<std::string> names;
  for (const auto& [name, state] : after) {
    auto it = before.find(name);
    if (it == before.end() || !(it->second == state)) names.push_back(name);
  }
  for (const auto& [name, state] : before) {
    if (!after.contains(name)) names.push_back(name + " (removed)");
  }
  return names;
}

TEST(PiPrepareTest, MakesTheSeparateStagesArtifactsSkipsThemOnARerunAndRedoesOnlyWhatChanged) {
  // The five commands a user would type, with the same settings.
  const std::string stages = ScratchDir("stages");
  const std::string model = stages + "/relu.pi";
  std::vector<std::string> convert = {prepare_test::Source(), "-o", model};
  for (const std::string& flag : prepare_test::ConvertFlags()) convert.push_back(flag);
  ToolResult r = RunTool("pi-convert", convert);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunTool("pi-profile", {"-m", model, "--dataset", prepare_test::Dataset(), "--max-tokens",
                             "1000", "--dump-samples", "-t", "1", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunTool("pi-train-predictor",
              {"-m", model, "--rank", "32", "--epochs", "2", "--seed", "3", "-t", "1", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunTool("pi-place", {"-m", model, "--vram", "64M", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // One pi-prepare.
  const std::string dir = ScratchDir("prepared");
  const std::string base = dir + "/model_q80";
  r = RunTool("pi-prepare", PrepareArgs(dir, {"--vram", "64M"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* stage : {"[1/4] convert: done", "[2/4] profile: done",
                            "[3/4] train-predictor: done", "[4/4] place: done"}) {
    EXPECT_TRUE(absl::StrContains(r.err, stage)) << r.err << " lacks " << stage;
  }
  EXPECT_TRUE(absl::StrContains(r.err, "recall")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "coverage")) << r.err;
  const std::string run = absl::StrCat("pi-run -m ", base, ".pi --predictor ", base,
                                       ".predictor.pi --plan ", base, ".plan.pi");
  EXPECT_TRUE(absl::StrContains(r.out, run)) << r.out << " lacks " << run;
  EXPECT_TRUE(absl::StrContains(r.out, "pi-server -m " + base + ".pi")) << r.out;

  EXPECT_EQ(ContentDigest(base + ".pi"), ContentDigest(model));
  EXPECT_EQ(ContentDigest(base + ".profile.pi"), ContentDigest(stages + "/relu.profile.pi"));
  EXPECT_EQ(SamplesContent(base + ".samples.zst"), SamplesContent(stages + "/relu.samples.zst"));
  EXPECT_EQ(ContentDigest(base + ".predictor.pi"), ContentDigest(stages + "/relu.predictor.pi"));
  EXPECT_EQ(ContentDigest(base + ".plan.pi"), ContentDigest(stages + "/relu.plan.pi"));

  // The command it prints runs as printed (pi-run beside the pi-prepare it ran, 4 tokens).
  {
    const size_t at = r.out.find("\nrun:\n  ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const size_t from = at + std::string("\nrun:\n  ").size();
    const std::string printed = r.out.substr(from, r.out.find('\n', from) - from);
    EXPECT_TRUE(absl::StartsWith(printed, (fs::path(PINFER_BINARY_DIR) / "pi-run").string()))
        << printed;
    const std::string command = printed + " -n 4 --temp 0 >/dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
  }

  // A rerun skips every stage and touches no file.
  auto before = Snapshot(dir);
  nlohmann::json report = RunJson(PrepareArgs(dir, {"--vram", "64M"}));
  EXPECT_EQ(StageStatuses(report),
            (std::map<std::string, std::string>{{"convert", "skipped"},
                                                {"profile", "skipped"},
                                                {"train-predictor", "skipped"},
                                                {"place", "skipped"}}));
  EXPECT_EQ(report.at("plan"), base + ".plan.pi");
  auto after = Snapshot(dir);
  EXPECT_TRUE(Changed(before, after).empty()) << ::testing::PrintToString(Changed(before, after));

  // Another budget: only the plan is made again.
  before = after;
  report = RunJson(PrepareArgs(dir, {"--vram", "5M"}));
  EXPECT_EQ(StageStatuses(report),
            (std::map<std::string, std::string>{{"convert", "skipped"},
                                                {"profile", "skipped"},
                                                {"train-predictor", "skipped"},
                                                {"place", "done"}}));
  after = Snapshot(dir);
  EXPECT_EQ(Changed(before, after), std::vector<std::string>{"model_q80.plan.pi"});

  // Fewer tokens to profile: the model stays, the profile and everything after it is redone.
  before = after;
  report = RunJson(PrepareArgs(dir, {"--vram", "5M"}, "900"));
  EXPECT_EQ(StageStatuses(report), (std::map<std::string, std::string>{{"convert", "skipped"},
                                                                       {"profile", "done"},
                                                                       {"train-predictor", "done"},
                                                                       {"place", "done"}}));
  after = Snapshot(dir);
  EXPECT_EQ(Changed(before, after),
            (std::vector<std::string>{"model_q80.plan.pi", "model_q80.predictor.pi",
                                      "model_q80.profile.pi", "model_q80.profile.svg",
                                      "model_q80.samples.zst"}));
  EXPECT_TRUE(prepare_test::TemporaryFiles(dir).empty());
}

// Starts pi-prepare with stderr to `err_path`; returns its pid.
pid_t Spawn(const std::vector<std::string>& args, const std::string& err_path) {
  const std::string program = (fs::path(PINFER_BINARY_DIR) / "pi-prepare").string();
  std::vector<char*> argv = {const_cast<char*>(program.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(PiPrepareTest, AKilledRunLeavesNoHalfArtifactAndTheNextRunCompletes) {
  const std::string dir = ScratchDir("killed");
  const std::string base = dir + "/model_q80";
  const std::string err_path = ScratchDir("killed_log") + "/stderr";
  const std::vector<std::string> args = PrepareArgs(dir, {"--vram", "64M"});
  const pid_t pid = Spawn(args, err_path);
  ASSERT_GT(pid, 0);
  // Kill it (SIGKILL: no handler runs) as soon as the training has started.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool training = false;
  while (!training && std::chrono::steady_clock::now() < deadline) {
    training = absl::StrContains(Slurp(err_path), "] train-predictor...");
    if (!training) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(training) << Slurp(err_path);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "pi-prepare ended before it was killed: " << Slurp(err_path);
  EXPECT_FALSE(fs::exists(base + ".predictor.pi"));
  EXPECT_FALSE(fs::exists(base + ".plan.pi"));
  EXPECT_TRUE(fs::exists(base + ".profile.pi"));
  // What a writer killed during its write leaves: a temporary file beside the target.
  testing::WriteFileText(base + ".predictor.pi.tmp.Ab12Cd", "half a predictor");

  const nlohmann::json report = RunJson(args);
  EXPECT_EQ(StageStatuses(report), (std::map<std::string, std::string>{{"convert", "skipped"},
                                                                       {"profile", "skipped"},
                                                                       {"train-predictor", "done"},
                                                                       {"place", "done"}}));
  EXPECT_EQ(prepare_test::TemporaryFiles(dir), std::vector<std::string>{});
  EXPECT_FALSE(ContentDigest(base + ".predictor.pi").empty());
  EXPECT_FALSE(ContentDigest(base + ".plan.pi").empty());
}

TEST(PiPrepareTest, ConvertsAnHfDirectoryWithASentencePieceTokenizerBesideLibTorch) {
  // pi-prepare links LibTorch, whose libprotobuf clashes with SentencePiece's: the tokenizer.model
  // is read through the SentencePiece module (tools/prepare/sentencepiece_loader.cc).
  testing::HfSpec spec;
  spec.variant = testing::HfVariant::kReluLlama;
  spec.tokenizer_model = true;
  spec.tokenizer_json = false;
  const std::string source = ScratchDir("hf") + "/ReluLLaMA-tiny";
  testing::WriteHfModel(source, spec);
  const std::string out = ScratchDir("hf_out") + "/new/dir";  // -o creates it
  const ToolResult r =
      RunTool("pi-prepare",
              {"-m", source, "--dataset", prepare_test::Dataset(), "-o", out, "--max-tokens",
               "1000", "--rank", "32", "--epochs", "1", "--seed", "3", "-t", "1", "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  EXPECT_EQ(StageStatuses(report),
            (std::map<std::string, std::string>{
                {"convert", "done"}, {"profile", "done"}, {"train-predictor", "done"}}));
  EXPECT_EQ(report.at("model"), out + "/ReluLLaMA-tiny.pi");
  EXPECT_TRUE(report.at("plan").is_null());
  absl::StatusOr<std::unique_ptr<PiFile>> model = PiFile::Open(out + "/ReluLLaMA-tiny.pi");
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::vector<std::string>> tokens =
      (*model)->metadata().GetStringArray("tokenizer.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(static_cast<int64_t>(tokens->size()), testing::TestTokenizerSize());
  // The same model as pi-convert makes of the directory (which links SentencePiece itself).
  const ToolResult converted = RunTool("pi-convert", {source, "-o", out + "/by_pi_convert.pi"});
  ASSERT_EQ(converted.exit_code, 0) << converted.err;
  EXPECT_EQ(ContentDigest(out + "/by_pi_convert.pi"), ContentDigest(out + "/ReluLLaMA-tiny.pi"));
  // No --vram, no plan: the commands name no plan.
  EXPECT_FALSE(absl::StrContains(report.at("pi_run").get<std::string>(), "--plan"));
}

}  // namespace
}  // namespace pinfer
