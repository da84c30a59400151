// pi-place on the real relu-llama-260k model: converted with tools/convert's library, profiled by a
// direct forward pass over text it generates itself, then placed through the library and through
// the pi-place binary.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "format/pi_writer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/model/placement_plan.h"
#include "tests/place/test_models.h"
#include "tests/place/tiny_profile.h"
#include "tools/solve_placement/memory_accounting.h"
#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/solve_placement.h"

namespace pinfer {
namespace {

using testing_support::ReluLlamaModel;
using testing_support::Stories260kModel;
using testing_support::TempPath;

std::unique_ptr<PiFile> OpenModel(const std::string& path) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

std::string TinyStories() {
  return std::string(PINFER_SOURCE_DIR) + "/tests/data/text/tinystories_valid_head.txt";
}

// relu-llama-260k's profile, written beside the model (where pi-place looks by default): the
// runtime's forward pass over 16 chunks of 64 tokens of TinyStories.
const testing_support::TextProfile& ReluRun() {
  static const testing_support::TextProfile run = [] {
    absl::StatusOr<testing_support::TextProfile> r =
        testing_support::ProfileOnText(ReluLlamaModel(), TinyStories(), 16);
    EXPECT_TRUE(r.ok()) << r.status();
    std::string path = ReluLlamaModel();
    path.replace(path.size() - 3, 3, ".profile.pi");
    EXPECT_TRUE(r->profile.Write(path).ok());
    return *r;
  }();
  return run;
}
const ActivationProfile& ReluProfile() { return ReluRun().profile; }

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

CliRun PiPlace(const std::string& args) {
  const std::string out = TempPath("stdout.txt"), err = TempPath("stderr.txt");
  const std::string command = absl::StrCat(PI_PLACE_BINARY, " ", args, " >", out, " 2>", err);
  CliRun run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::stringstream o, e;
  o << std::ifstream(out).rdbuf();
  e << std::ifstream(err).rdbuf();
  run.out = o.str();
  run.err = e.str();
  return run;
}

TEST(ModelPlaceTest, ProfileIsRealAndSparse) {
  const testing_support::TextProfile& run = ReluRun();
  RecordProperty("zero_fraction", std::to_string(run.zero_fraction));
  EXPECT_EQ(run.profile.tokens, 16 * 64);
  EXPECT_EQ(run.profile.context, 64);
  // tests/data/reference_outputs.md: 76.9% of this model's FFN activations are exactly zero on
  // its own generation; TinyStories text is of the same kind.
  EXPECT_GT(run.zero_fraction, 0.70);
  EXPECT_LT(run.zero_fraction, 0.85);
  // Activation locality: some neurons fire on most tokens, many on few.
  int hot = 0, cold = 0;
  for (int64_t i = 0; i < 4 * 192; ++i) {
    const double f = static_cast<double>(run.profile.fire_count[i]) / run.profile.tokens;
    hot += f > 0.5;
    cold += f < 0.05;
  }
  EXPECT_GT(hot, 10);
  EXPECT_GT(cold, 100);
}

TEST(ModelPlaceTest, ProblemBytesComeFromTheTensorIndex) {
  std::unique_ptr<PiFile> model = OpenModel(ReluLlamaModel());
  ASSERT_NE(model, nullptr);
  ModelPlacementOptions options;
  options.budget_bytes = 1 << 20;
  options.batch = 1;
  absl::StatusOr<ModelProblem> mp = BuildModelProblem(*model, ReluProfile(), options);
  ASSERT_TRUE(mp.ok()) << mp.status();
  const PlacementProblem& p = mp->problem;
  ASSERT_EQ(p.layers.size(), 4u);
  EXPECT_EQ(mp->weight_dtype, "q8_0");
  EXPECT_EQ(mp->context, 64);  // min(4096, the model's 64)
  // q8_0 rows of 64: 2 blocks of 34 bytes. A neuron is a gate, an up and a down_t row.
  EXPECT_EQ(p.layers[0].neuron_bytes, 3u * 68);
  EXPECT_EQ(p.layers[0].attention_bytes, 4u * 64 * 68);
  EXPECT_EQ(p.layers[0].kv_bytes, 2u * 64 * 64 * 2);
  EXPECT_EQ(p.layers[0].predictor_bytes, 2u * 16 * (64 + 192) + 4u * (16 + 192));
  EXPECT_EQ(p.output_bytes, 1024u * 68);  // tied: token_embd is the classifier
  EXPECT_EQ(mp->output_tensor, "token_embd");
  EXPECT_EQ(p.norm_bytes, 9u * 64 * 4);
  EXPECT_EQ(p.workspace_bytes, WorkspaceBytes(mp->config, 64, 1));
  // Frequencies are the profile's counts over its tokens; the ReLU model is sparse.
  double mass = 0;
  for (float f : p.layers[1].frequency) mass += f;
  EXPECT_NEAR(mass / 192, ReluProfile().LayerDensity(1), 1e-6);
  EXPECT_LT(ReluProfile().LayerDensity(1), 0.5);
}

TEST(ModelPlaceTest, CliWritesAPlanThatMatchesItsReport) {
  ReluProfile();
  const std::string plan_path = TempPath("relu.plan.pi");
  std::unique_ptr<PiFile> model = OpenModel(ReluLlamaModel());
  // Room for the minimum, two layers' FFN and some attention, not everything.
  const CliRun run = PiPlace(
      absl::StrCat("-m ", ReluLlamaModel(), " --vram 150K --batch 1 --json -q -o ", plan_path));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const nlohmann::json report = nlohmann::json::parse(run.out);
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(plan_path, model->ContentDigestHex());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 150u << 10);
  EXPECT_EQ(plan->objective, "coverage");
  EXPECT_EQ(plan->context, 64);
  EXPECT_EQ(plan->group_size, 64);
  EXPECT_EQ(plan->bytes.total(), report["placement"]["bytes"]["total"].get<uint64_t>());
  EXPECT_LE(plan->bytes.total(), plan->budget_bytes);
  EXPECT_DOUBLE_EQ(plan->expected_coverage, report["placement"]["coverage"].get<double>());
  EXPECT_GT(plan->expected_coverage, 0.3);
  EXPECT_LT(plan->expected_coverage, 1.0);
  EXPECT_EQ(report["solver"]["status"].get<std::string>().rfind("cbc", 0), 0u);
  EXPECT_LT(report["solver"]["gap"].get<double>(), 0.01);
  // The coverage recomputed from the plan's neuron lists and the profile.
  const ActivationProfile& profile = ReluProfile();
  double gpu = 0, all = 0;
  for (int64_t l = 0; l < 4; ++l) {
    EXPECT_EQ(plan->ffn_gpu_neurons[l].size(), report["layers"][l]["gpu_neurons"].get<size_t>());
    for (int32_t i : plan->ffn_gpu_neurons[l]) gpu += profile.fire_count[l * 192 + i];
    for (int64_t i = 0; i < 192; ++i) all += profile.fire_count[l * 192 + i];
    // The default hardware makes a split of this tiny layer cost more than it saves: whole
    // layers or nothing.
    EXPECT_EQ(plan->min_share_neurons[l], 192);
    EXPECT_TRUE(plan->ffn_gpu_neurons[l].empty() || plan->ffn_gpu_neurons[l].size() == 192);
  }
  EXPECT_NEAR(gpu / all, plan->expected_coverage, 1e-9);
  for (const std::string& name : plan->gpu_tensors) {
    EXPECT_NE(model->Find(name), nullptr) << name;
  }
  EXPECT_TRUE(plan->TensorOnGpu("output_norm"));
}

TEST(ModelPlaceTest, CliHumanTableAndLatencyObjective) {
  ReluProfile();
  const std::string hw = TempPath("cheap_sync.json");
  std::ofstream(hw) << R"({"gpu": {"name": "h100"}, "link": {"latency_us": 0, "sync_us": 0}})";
  const CliRun run = PiPlace(absl::StrCat("-m ", ReluLlamaModel(),
                                          " --vram 120K --batch 1 --group 16 --objective latency "
                                          "--hardware ",
                                          hw, " -o ", TempPath("latency.plan.pi")));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("greedy baseline"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("est. latency / token"), std::string::npos);
  EXPECT_NE(run.out.find("objective latency"), std::string::npos);
  EXPECT_NE(run.err.find("wrote"), std::string::npos);
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(TempPath("latency.plan.pi"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->hardware, "h100");
  EXPECT_GT(plan->expected_latency_ms, 0);
  // With free synchronisation, groups of 16 may split a layer.
  int64_t smallest_share = 192;
  for (int32_t share : plan->min_share_neurons)
    smallest_share = std::min<int64_t>(smallest_share, share);
  EXPECT_LT(smallest_share, 192);
}

TEST(ModelPlaceTest, CliMoreVramNeverLowersCoverage) {
  ReluProfile();
  double last = -1;
  for (const char* vram : {"12K", "60K", "100K", "150K", "200K", "250K", "300K", "409600"}) {
    const CliRun run = PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --vram ", vram,
                                            " --batch 1 --json -q -o ", TempPath("mono.plan.pi")));
    ASSERT_EQ(run.exit_code, 0) << vram << ": " << run.err;
    const double coverage = nlohmann::json::parse(run.out)["placement"]["coverage"].get<double>();
    EXPECT_GE(coverage, last) << vram;
    last = coverage;
  }
  EXPECT_DOUBLE_EQ(last, 1.0);
}

TEST(ModelPlaceTest, CliBudgetAboveTheModelPutsEverythingOnTheGpu) {
  ReluProfile();
  const std::string plan_path = TempPath("all.plan.pi");
  const CliRun run =
      PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --vram 1.5G --json -q -o ", plan_path));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["solver"]["status"], "all fits");
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(plan_path);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->GpuNeuronCount(), 4 * 192);
  EXPECT_DOUBLE_EQ(plan->expected_coverage, 1.0);
  EXPECT_EQ(plan->expected_sync_ms, 0.0);
  std::unique_ptr<PiFile> model = OpenModel(ReluLlamaModel());
  for (const TensorInfo& t : model->tensors()) {
    const bool ffn = t.name.find("ffn_gate") != std::string::npos ||
                     t.name.find("ffn_up") != std::string::npos ||
                     t.name.find("ffn_down_t") != std::string::npos;
    if (!ffn) {
      EXPECT_TRUE(plan->TensorOnGpu(t.name)) << t.name;  // FFN rows are in the lists
    }
  }
}

TEST(ModelPlaceTest, CliBudgetBelowTheMinimumNamesIt) {
  ReluProfile();
  const std::string plan_path = TempPath("small.plan.pi");
  std::filesystem::remove(plan_path);
  const CliRun run =
      PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --vram 4K --batch 1 -o ", plan_path));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err.rfind("pi-place: error: ", 0), 0u) << run.err;
  EXPECT_NE(run.err.find("below the minimum working set of"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(ReluLlamaModel()), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_FALSE(std::filesystem::exists(plan_path));
}

TEST(ModelPlaceTest, CliRejectsAProfileOfAnotherModel) {
  ReluProfile();
  absl::StatusOr<testing_support::TextProfile> run =
      testing_support::ProfileOnText(Stories260kModel(), TinyStories(), 1, 16);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string profile = TempPath("stories.profile.pi");
  ASSERT_TRUE(run->profile.Write(profile).ok());
  const CliRun cli = PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --profile ", profile,
                                          " --vram 1M -o ", TempPath("x.plan.pi")));
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("was made for another model"), std::string::npos) << cli.err;
  EXPECT_NE(cli.err.find(profile), std::string::npos) << cli.err;
}

TEST(ModelPlaceTest, CliRejectsBadFlagsWithOneLine) {
  ReluProfile();
  const std::pair<std::string, std::string> cases[] = {
      {"--vram lots", "--vram"},
      {"--vram 1M --objective speed", "--objective"},
      {"--vram 1M --group 0", "--group"},
      {"--vram 1M --hardware /nonexistent.json", "/nonexistent.json"},
      {"--vram 1M --gpu tpu", "unknown GPU 'tpu'"},
      {"--vram 1M --predictor /nonexistent.pi", "/nonexistent.pi"},
      // Values that used to be replaced by defaults or passed to CBC as they were.
      {"--vram 1M --time-limit nan", "--time-limit: expected a finite number, got 'nan'"},
      {"--vram 1M --time-limit -5", "--time-limit: must lie in (0, 1e+07], got -5"},
      {"--vram 1M --time-limit inf", "--time-limit: expected a finite number, got 'inf'"},
      {"--vram 1M --gap nan", "--gap: expected a finite number"},
      {"--vram 1M --gap 2", "--gap: must lie in [0, 1], got 2"},
      {"--vram 1M --ctx 0", "--ctx: must lie in [1, "},
      {"--vram 1M --ctx -1", "--ctx: must lie in [1, "},
      {"--vram 1M --predictor-rank -5", "--predictor-rank: must lie in [1, "},
      {"--vram 1M --batch 0", "--batch: must lie in [1, "},
  };
  for (const auto& [args, message] : cases) {
    const CliRun run = PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " ", args));
    EXPECT_EQ(run.exit_code, 1) << args;
    EXPECT_NE(run.err.find(message), std::string::npos) << args << ": " << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << args << ": " << run.err;
  }
  const CliRun missing = PiPlace("--vram 1M");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--model"), std::string::npos);
}

// -o naming one of pi-place's inputs (or, with --calibrate, any .pi artifact) is refused before
// anything is written: the input stays as it was.
TEST(ModelPlaceTest, CliNeverOverwritesItsInputs) {
  ReluProfile();
  const std::string dir = TempPath("overwrite");
  std::filesystem::create_directories(dir);
  const std::string model = dir + "/m.pi", profile = dir + "/m.profile.pi",
                    predictor = dir + "/m.predictor.pi";
  std::filesystem::copy_file(ReluLlamaModel(), model);
  std::string beside = ReluLlamaModel();
  beside.replace(beside.size() - 3, 3, ".profile.pi");
  std::filesystem::copy_file(beside, profile);
  std::filesystem::copy_file(beside, predictor);  // any file: the check comes before it is read
  auto bytes = [](const std::string& path) {
    std::stringstream text;
    text << std::ifstream(path, std::ios::binary).rdbuf();
    return text.str();
  };
  const std::string model_bytes = bytes(model), profile_bytes = bytes(profile);
  const std::pair<std::string, std::string> cases[] = {
      {"-o " + model, "would overwrite the model " + model},
      {"-o " + profile, "would overwrite the profile " + profile},
      {"--predictor " + predictor + " -o " + predictor,
       "would overwrite the predictor " + predictor},
      {"-o " + dir + "/../overwrite/m.pi", "would overwrite the model " + model},
  };
  for (const auto& [args, message] : cases) {
    const CliRun run = PiPlace(absl::StrCat("-m ", model, " --vram 1M ", args));
    EXPECT_EQ(run.exit_code, 1) << args;
    EXPECT_NE(run.err.find(message), std::string::npos) << args << ": " << run.err;
  }
  const CliRun calibrate = PiPlace(absl::StrCat("--calibrate -o ", model));
  EXPECT_EQ(calibrate.exit_code, 1) << calibrate.err;
  EXPECT_NE(calibrate.err.find("would overwrite a model artifact"), std::string::npos)
      << calibrate.err;
  EXPECT_EQ(bytes(model), model_bytes);
  EXPECT_EQ(bytes(profile), profile_bytes);
}

// The README's calibration step as commands: --calibrate writes a hardware file (also printed on
// stdout) that a latency placement then reads.
TEST(ModelPlaceTest, CliCalibrateWritesAHardwareFileThatPlacementAccepts) {
  ReluProfile();
  const std::string hw = TempPath("calibrated.json");
  std::filesystem::remove(hw);
  const CliRun calibrate = PiPlace(absl::StrCat("--calibrate --gpu h100 -q -o ", hw));
  ASSERT_EQ(calibrate.exit_code, 0) << calibrate.err;
  std::stringstream text;
  text << std::ifstream(hw).rdbuf();
  EXPECT_EQ(text.str(), calibrate.out);
  const nlohmann::json file = nlohmann::json::parse(text.str());
  EXPECT_EQ(file["name"], "h100");
  EXPECT_GT(file["cpu"]["bandwidth_gbps"].get<double>(), 0.1);
  EXPECT_GT(file["cpu"]["sparse_bandwidth_gbps"].get<double>(), 0.0);
  EXPECT_NE(file["cpu"]["source"].get<std::string>().find("pi-place --calibrate"),
            std::string::npos);
  const CliRun place =
      PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --vram 150K --batch 1 --hardware ", hw,
                           " --objective latency --json -q -o ", TempPath("calibrated.plan.pi")));
  ASSERT_EQ(place.exit_code, 0) << place.err;
  const nlohmann::json report = nlohmann::json::parse(place.out);
  EXPECT_EQ(report["hardware"], "h100");
  EXPECT_EQ(report["objective"], "latency");
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(TempPath("calibrated.plan.pi"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_GT(plan->expected_latency_ms, 0);
}

// --time-limit and --gap are what CBC runs with (read back from CBC's model), and they stop it:
// a huge gap accepts the start at the root, a microsecond ends the search before any node.
TEST(ModelPlaceTest, CliTimeLimitAndGapReachCbc) {
  ReluProfile();
  auto solver = [](const std::string& flags) {
    const CliRun run = PiPlace(absl::StrCat("-m ", ReluLlamaModel(), " --vram 150K --batch 1 ",
                                            flags, " --json -q -o ", TempPath("limits.plan.pi")));
    EXPECT_EQ(run.exit_code, 0) << flags << ": " << run.err;
    return run.exit_code == 0 ? nlohmann::json::parse(run.out)["solver"] : nlohmann::json();
  };
  const nlohmann::json defaults = solver("");
  EXPECT_EQ(defaults["time_limit_s"], 10.0);
  EXPECT_EQ(defaults["relative_gap"], 5e-3);
  EXPECT_EQ(defaults["status"], "cbc optimal");
  EXPECT_GT(defaults["nodes"].get<int64_t>(), 0);

  const nlohmann::json given = solver("--time-limit 7.5 --gap 0.25");
  EXPECT_EQ(given["time_limit_s"], 7.5);
  EXPECT_EQ(given["relative_gap"], 0.25);

  const nlohmann::json loose = solver("--gap 1");
  EXPECT_EQ(loose["status"], "cbc gap limit");
  EXPECT_EQ(loose["nodes"], 0);
  EXPECT_GT(loose["gap"].get<double>(), defaults["gap"].get<double>());

  const nlohmann::json hurried = solver("--time-limit 1e-6");
  EXPECT_EQ(hurried["time_limit_s"], 1e-6);
  EXPECT_EQ(hurried["status"], "cbc time limit");
}

// A KV cache longer than the model's trained context (its header says 64 tokens) is placed, with
// one warning line.
TEST(ModelPlaceTest, CliWarnsOfAContextAboveTheTrainedOne) {
  ReluProfile();
  const std::string plan = TempPath("long.plan.pi");
  const CliRun above = PiPlace(absl::StrCat("-m ", ReluLlamaModel(),
                                            " --vram 1M --batch 1 "
                                            "--ctx 256 --json -q -o ",
                                            plan));
  ASSERT_EQ(above.exit_code, 0) << above.err;
  EXPECT_EQ(above.err,
            absl::StrCat("pi-place: warning: --ctx 256 is above the context ", ReluLlamaModel(),
                         " was trained for (64 tokens, from its header)\n"));
  EXPECT_EQ(nlohmann::json::parse(above.out)["context"], 256);
  const CliRun within = PiPlace(absl::StrCat("-m ", ReluLlamaModel(),
                                             " --vram 1M --batch 1 "
                                             "--ctx 64 --json -q -o ",
                                             plan));
  ASSERT_EQ(within.exit_code, 0) << within.err;
  EXPECT_EQ(within.err, "");
}

TEST(ModelPlaceTest, PredictorFileSizesAreCountedPerLayer) {
  ReluProfile();
  std::unique_ptr<PiFile> model = OpenModel(ReluLlamaModel());
  // A predictor artifact as pi-train-predictor will write it (its schema is not fixed yet: only
  // the tensor bytes and model.digest matter here).
  Metadata m;
  m.SetString(keys::kModelDigest, model->ContentDigestHex());
  std::vector<TensorData> tensors;
  for (int l = 0; l < 4; ++l) {
    const std::vector<float> w(static_cast<size_t>(100 * (l + 1)), 0.5f);
    tensors.push_back(MakeTensor(absl::StrCat("blk.", l, ".pred_w1"), {w.size()}, w));
  }
  const std::vector<float> shared(8, 1.0f);
  tensors.push_back(MakeTensor("pred.meta", {8}, shared));
  const std::string path = TempPath("relu.predictor.pi");
  ASSERT_TRUE(WritePiFile(path, ArtifactKind::kPredictor, m, tensors).ok());
  ModelPlacementOptions options;
  options.budget_bytes = 1 << 20;
  options.batch = 1;
  options.predictor_path = path;
  absl::StatusOr<ModelProblem> mp = BuildModelProblem(*model, ReluProfile(), options);
  ASSERT_TRUE(mp.ok()) << mp.status();
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(mp->problem.layers[l].predictor_bytes, 400u * (l + 1) + 8) << l;  // + 32 B / 4
  }
  // A predictor made for another model is rejected.
  m.SetString(keys::kModelDigest, "ffffffffffffffff");
  ASSERT_TRUE(WritePiFile(path, ArtifactKind::kPredictor, m, tensors).ok());
  mp = BuildModelProblem(*model, ReluProfile(), options);
  ASSERT_FALSE(mp.ok());
  EXPECT_NE(mp.status().message().find("was made for another model"), std::string::npos);
}

}  // namespace
}  // namespace pinfer
