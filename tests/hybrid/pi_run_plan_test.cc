// pi-run with a placement plan, end to end on the real relu-llama-260k model: --plan (explicit, and
// beside the model: used by default only with a GPU), --vram-budget solving the plan with the real
// pi-place from a pi-profile profile and reusing the cached plan, and one clear line for every bad
// input.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/exec/cuda_ffn_part.h"
#include "runtime/model/model.h"
#include "runtime/model/placement_plan.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

test::ProgramResult PiRun(const std::vector<std::string>& args) {
  return test::RunProgram(PI_RUN_PATH, args);
}

// A copy of a bundled model in a directory of its own, so that files beside it are this test's.
std::string ModelInOwnDirectory(const std::string& dir_name,
                                BundledModel which = BundledModel::kReluLlama260K) {
  const fs::path dir = fs::path(test::ScratchDir()) / dir_name;
  fs::create_directories(dir);
  const fs::path model = dir / "model.pi";
  fs::copy_file(test::ConvertedModel(which), model, fs::copy_options::overwrite_existing);
  return model.string();
}

std::string Beside(const std::string& model, const std::string& suffix) {
  return model.substr(0, model.size() - 3) + "." + suffix + ".pi";
}

// A valid plan for `model_path` with a random share of each layer's neurons on the GPU, and the
// attention of the layers `attention` marks (empty: none) and the classifier when asked.
void WriteRandomPlan(const std::string& model_path, const std::string& plan_path, double share,
                     std::vector<uint8_t> attention = {}, bool classifier = false) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(model_path);
  ASSERT_TRUE(model.ok()) << model.status();
  PlacementPlan plan;
  plan.model_digest = (*model)->file().ContentDigestHex();
  plan.n_layers = (*model)->n_layers();
  plan.n_ff = (*model)->config().n_ff;
  plan.budget_bytes = 1 << 20;
  plan.group_size = 1;
  plan.objective = "coverage";
  plan.hardware = "test";
  plan.solver = "random";
  std::mt19937 rng(3);
  std::bernoulli_distribution pick(share);
  const size_t L = static_cast<size_t>(plan.n_layers);
  plan.ffn_gpu_neurons.resize(L);
  plan.attention_on_gpu.assign(L, 0);
  plan.min_share_neurons.assign(L, 1);
  plan.ffn_gpu_coverage.assign(L, static_cast<float>(share));
  plan.predictor_on_gpu.assign(L, 0);
  for (size_t l = 0; l < L; ++l) {
    for (int32_t i = 0; i < plan.n_ff; ++i) {
      if (pick(rng)) plan.ffn_gpu_neurons[l].push_back(i);
    }
    plan.predictor_on_gpu[l] = !plan.ffn_gpu_neurons[l].empty();
  }
  if (!attention.empty()) plan.attention_on_gpu = attention;
  if (classifier) {
    plan.gpu_tensors.push_back((*model)->config().tied_embeddings ? "token_embd" : "output");
  }
  ASSERT_TRUE(plan.Write(plan_path).ok());
}

// The GPU part on the CPU: the text must then be the dense run's exactly (on a GPU the float
// rounding differs, which greedy decoding may amplify; the auto test covers that path).
const std::vector<std::string> kGenerate = {
    "-p", "Once upon a time", "-n", "24", "--temp", "0", "-t", "1", "--gpu-backend", "cpu"};

std::vector<std::string> Args(const std::string& model, std::vector<std::string> extra) {
  std::vector<std::string> args = {"-m", model};
  args.insert(args.end(), kGenerate.begin(), kGenerate.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The dense run's text (no plan beside the model).
const std::string& DenseText() {
  static const std::string text = [] {
    const test::ProgramResult r = PiRun(Args(ModelInOwnDirectory("dense"), {}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(absl::StrContains(r.err, "hybrid")) << r.err;
    return r.out;
  }();
  return text;
}

void ExpectOneLineError(const test::ProgramResult& r, const std::string& mention) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string err = r.err.substr(0, r.err.size() - 1);
  const std::string last = err.substr(err.rfind('\n') + 1);
  EXPECT_TRUE(absl::StartsWith(last, "pi-run: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(last, mention)) << r.err << " lacks " << mention;
}

TEST(PiRunPlanTest, ExplicitPlanGivesTheDenseTextAndReportsTheSplit) {
  const std::string model = ModelInOwnDirectory("explicit");
  const std::string plan = fs::path(model).parent_path() / "random.plan.pi";
  WriteRandomPlan(model, plan, 0.5);
  const test::ProgramResult r = PiRun(Args(model, {"--plan", plan}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, DenseText());
  for (const char* s :
       {"plan ", "in the GPU part", "the GPU part runs on the CPU (--gpu-backend cpu)",
        "hybrid FFN over", "ms/token", "hot coverage", "decode: 23 tokens"}) {
    EXPECT_TRUE(absl::StrContains(r.err, s)) << r.err << " lacks " << s;
  }
}

// A plan with attention (odd layers) and the classifier on the GPU as well: the CPU standing in
// for it gives the dense text, and the VRAM it holds is reported, per part, next to the budget, on
// stderr and in --json.
TEST(PiRunPlanTest, DensePartsOnTheDeviceGiveTheDenseTextAndReportTheirMemory) {
  const std::string model = ModelInOwnDirectory("dense_parts");
  const std::string plan = fs::path(model).parent_path() / "device.plan.pi";
  WriteRandomPlan(model, plan, 0.5, {0, 1, 0, 1}, /*classifier=*/true);
  const std::string json = fs::path(model).parent_path() / "report.json";
  const test::ProgramResult r = PiRun(Args(model, {"--plan", plan, "--json", json}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, DenseText());
  for (const char* s : {"attention of 2 of 4 layers and the classifier on the GPU",
                        "VRAM (cpu stand-in): ", " used of the budget 1.00 MiB: workspace ",
                        "attention ", "kv ", "ffn ", "output ", "the plan expects "}) {
    EXPECT_TRUE(absl::StrContains(r.err, s)) << r.err << " lacks " << s;
  }
  std::ifstream in(json);
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* s : {"\"vram\"", "\"device\": \"cpu stand-in\"", "\"budget_bytes\": 1048576",
                        "\"attention\": "}) {
    EXPECT_TRUE(absl::StrContains(report, s)) << report << " lacks " << s;
  }
}

// The unified FFN gives a hybrid run what a sparse one has: the oracle's selection, --check on
// both parts and the dense fallback.
TEST(PiRunPlanTest, CheckAndTheOracleRunOnBothParts) {
  const std::string model = ModelInOwnDirectory("check");
  const std::string plan = fs::path(model).parent_path() / "random.plan.pi";
  WriteRandomPlan(model, plan, 0.5);
  const test::ProgramResult r = PiRun(Args(model, {"--plan", plan, "--oracle-sparse", "--check"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, DenseText());
  for (const char* s :
       {"hybrid FFN over", "ffn: hybrid, sparse parts (oracle selection",
        "check: layer  0: ", "check: all layers: ", "recall 1.0000, false-negative mass 0.0000"}) {
    EXPECT_TRUE(absl::StrContains(r.err, s)) << r.err << " lacks " << s;
  }
  // A crossover of 0: every call of both parts falls back to all of its neurons.
  const test::ProgramResult all =
      PiRun(Args(model, {"--plan", plan, "--oracle-sparse", "--sparse-crossover", "0"}));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, DenseText());
  const size_t at = all.err.find(" layer calls fell back to dense");
  ASSERT_NE(at, std::string::npos) << all.err;
  const std::string counts =
      all.err.substr(all.err.rfind(' ', at - 1) + 1, at - all.err.rfind(' ', at - 1) - 1);
  const size_t slash = counts.find('/');
  ASSERT_NE(slash, std::string::npos) << counts;
  EXPECT_EQ(counts.substr(0, slash), counts.substr(slash + 1)) << all.err;
  EXPECT_NE(counts.substr(0, slash), "0") << all.err;
}

TEST(PiRunPlanTest, AutoBackendUsesTheGpuWhenThereIsOne) {
  const std::string model = ModelInOwnDirectory("auto");
  const std::string plan = fs::path(model).parent_path() / "random.plan.pi";
  WriteRandomPlan(model, plan, 0.5);
  const test::ProgramResult r = PiRun({"-m", model, "--plan", plan, "-p", "Once upon a time", "-n",
                                       "24", "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (absl::Status gpu = CheckCudaAvailable(); gpu.ok()) {
    EXPECT_TRUE(absl::StrContains(r.err, "the GPU part runs on CUDA on ")) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "GPU part (cuda)")) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "Once upon a time")) << r.out;
  } else {
    EXPECT_TRUE(absl::StrContains(r.err, "the GPU part runs on the CPU (no GPU: ")) << r.err;
    // Without a driver CUDA says "insufficient driver": the note says what that means.
    if (CudaBackendBuilt()) {
      EXPECT_TRUE(absl::StrContains(r.err, "no NVIDIA GPU found (")) << r.err;
    }
    EXPECT_TRUE(absl::StrContains(r.err, "GPU part (cpu)")) << r.err;
    EXPECT_EQ(r.out, DenseText());
    ExpectOneLineError(PiRun({"-m", model, "--plan", plan, "--gpu-backend", "cuda", "-p", "x"}),
                       "--gpu-backend cuda: no GPU for the plan's GPU part");
  }
}

TEST(PiRunPlanTest, PredictorBesideTheModelSelectsTheActiveNeurons) {
  const std::string model = ModelInOwnDirectory("predictor");
  WriteRandomPlan(model, Beside(model, "plan"), 0.5);
  absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(model);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(hybrid_test::RandomPredictor(**loaded, 4)->Write(Beside(model, "predictor")).ok());
  const test::ProgramResult r = PiRun(Args(model, {"--plan", Beside(model, "plan")}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "Once upon a time")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err, "predictor " + Beside(model, "predictor"))) << r.err;
  EXPECT_FALSE(absl::StrContains(r.err, "no predictor")) << r.err;
  // 4 layers x 192 neurons for each of the ~29 tokens when dense; the predictor keeps about half.
  const size_t at = r.err.find(" computed neurons");
  ASSERT_NE(at, std::string::npos) << r.err;
  const size_t begin = r.err.rfind(' ', at - 1) + 1;
  const int64_t computed = std::stoll(r.err.substr(begin, at - begin));
  const size_t tokens_at = r.err.find("hybrid FFN over ") + 16;
  const int64_t tokens = std::stoll(r.err.substr(tokens_at));
  EXPECT_GT(computed, 0);
  EXPECT_LT(computed, tokens * 4 * 192 * 9 / 10) << r.err;
}

// The plan pi-place writes beside the model applies by itself only where there is a GPU; without
// one a single note says it is ignored and how to use it anyway, and the run is dense.
TEST(PiRunPlanTest, PlanBesideTheModelIsTheDefaultOnlyWithAGpu) {
  const std::string model = ModelInOwnDirectory("beside");
  const std::string plan = Beside(model, "plan");
  WriteRandomPlan(model, plan, 0.3);
  const std::string ignored = absl::StrCat("note: ignoring the plan ", plan, " beside the model: ");
  const test::ProgramResult by_default = PiRun(Args(model, {}));
  ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
  EXPECT_EQ(by_default.out, DenseText());
  if (CheckCudaAvailable().ok()) {
    EXPECT_TRUE(absl::StrContains(by_default.err, "hybrid FFN over")) << by_default.err;
    EXPECT_FALSE(absl::StrContains(by_default.err, ignored)) << by_default.err;
  } else {
    EXPECT_FALSE(absl::StrContains(by_default.err, "hybrid FFN")) << by_default.err;
    const size_t at = by_default.err.find(ignored);
    ASSERT_NE(at, std::string::npos) << by_default.err;
    const std::string line = by_default.err.substr(at, by_default.err.find('\n', at) - at);
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat("; --plan ", plan, " uses it anyway")))
        << line;
    if (CudaBackendBuilt()) EXPECT_TRUE(absl::StrContains(line, "no NVIDIA GPU found")) << line;
    EXPECT_EQ(by_default.err.find(ignored, at + 1), std::string::npos) << "one line only";
  }
  // --plan asks for it: hybrid (the CPU standing in without a GPU), the same text.
  const test::ProgramResult asked = PiRun(Args(model, {"--plan", plan}));
  ASSERT_EQ(asked.exit_code, 0) << asked.err;
  EXPECT_EQ(asked.out, DenseText());
  EXPECT_TRUE(absl::StrContains(asked.err, "plan " + plan)) << asked.err;
  EXPECT_TRUE(absl::StrContains(asked.err, "hybrid FFN over")) << asked.err;
  EXPECT_FALSE(absl::StrContains(asked.err, ignored)) << asked.err;
  const test::ProgramResult without = PiRun(Args(model, {"--plan", "none"}));
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(without.out, DenseText());
  EXPECT_FALSE(absl::StrContains(without.err, "hybrid FFN")) << without.err;
  EXPECT_FALSE(absl::StrContains(without.err, ignored)) << without.err;
}

TEST(PiRunPlanTest, VramBudgetSolvesWithPiPlaceAndReusesTheCachedPlan) {
  const std::string model = ModelInOwnDirectory("budget");
  // No profile yet: one clear line saying what to run.
  ExpectOneLineError(PiRun(Args(model, {"--vram-budget", "3900K"})), "no activation profile");
  const test::ProgramResult profiled = test::RunProgram(
      PI_PROFILE_PATH,
      {"-m", model, "--dataset", test::SourcePath("tests/data/text/tinystories_valid_head.txt"),
       "--max-tokens", "256", "-q", "-t", "1"});
  ASSERT_EQ(profiled.exit_code, 0) << profiled.err;

  const std::string cached = Beside(model, "plan-3900K");
  const test::ProgramResult first = PiRun(Args(model, {"--vram-budget", "3900K"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, DenseText());
  EXPECT_TRUE(absl::StrContains(first.err, "solved the placement with")) << first.err;
  EXPECT_TRUE(absl::StrContains(first.err, cached)) << first.err;
  ASSERT_TRUE(fs::exists(cached));
  absl::StatusOr<PlacementPlan> plan = PlacementPlan::Read(cached);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->budget_bytes, 3900u << 10);
  // The budget holds the minimum working set and part of the FFN: a real split.
  EXPECT_GT(plan->GpuNeuronCount(), 0);
  EXPECT_LT(plan->GpuNeuronCount(), plan->n_layers * plan->n_ff);
  const auto written = fs::last_write_time(cached);

  const test::ProgramResult second = PiRun(Args(model, {"--vram-budget", "3900K"}));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, DenseText());
  EXPECT_TRUE(absl::StrContains(second.err, "reusing the plan " + cached)) << second.err;
  EXPECT_EQ(fs::last_write_time(cached), written);

  // A cached plan made for another model is solved again.
  const std::string stories = ModelInOwnDirectory("budget_other", BundledModel::kStories260K);
  WriteRandomPlan(stories, cached, 0.5);
  const test::ProgramResult stale = PiRun(Args(model, {"--vram-budget", "3900K"}));
  ASSERT_EQ(stale.exit_code, 0) << stale.err;
  EXPECT_TRUE(absl::StrContains(stale.err, "does not fit this model, solving it again"))
      << stale.err;
  plan = PlacementPlan::Read(cached);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(model);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(plan->model_digest, (*loaded)->file().ContentDigestHex());

  // pi-place's own errors come back on one line (a budget below the minimum working set: 3.6 MiB).
  ExpectOneLineError(PiRun(Args(model, {"--vram-budget", "1K"})), "pi-place");
  EXPECT_FALSE(fs::exists(Beside(model, "plan-1K")));
}

// A calibrated SiLU model runs the plan with its thresholds: the same text as the sparse FFN's
// thresholded model (--oracle-sparse), not the dense text.
TEST(PiRunPlanTest, CalibratedModelRunsThePlanWithItsThresholds) {
  const std::string model = ModelInOwnDirectory("calibrated", BundledModel::kStories260K);
  const test::ProgramResult profiled = test::RunProgram(
      PI_PROFILE_PATH,
      {"-m", model, "--dataset", test::SourcePath("tests/data/text/tinystories_valid_head.txt"),
       "--max-tokens", "2048", "--target-sparsity", "0.5", "-q", "-t", "1"});
  ASSERT_EQ(profiled.exit_code, 0) << profiled.err;
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"-m", model, "-p", "Once upon a time", "-n", "40", "--temp",
                                     "0",  "-t",  "1",  "--gpu-backend",    "cpu"};
    args.insert(args.end(), extra.begin(), extra.end());
    const test::ProgramResult r = PiRun(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  };
  const std::string thresholded = run({"--oracle-sparse"});
  ASSERT_NE(thresholded, run({"--dense"}));  // the thresholds change this text
  const std::string plan = Beside(model, "plan");
  WriteRandomPlan(model, plan, 0.5);
  EXPECT_EQ(run({"--plan", plan}), thresholded);
}

TEST(PiRunPlanTest, MissingPiPlaceIsOneLine) {
  const std::string model = ModelInOwnDirectory("no_pi_place");
  fs::copy_file(test::ConvertedModel(BundledModel::kReluLlama260K), model,
                fs::copy_options::overwrite_existing);
  // A profile, so that only pi-place is missing.
  const test::ProgramResult profiled = test::RunProgram(
      PI_PROFILE_PATH,
      {"-m", model, "--dataset", test::SourcePath("tests/data/text/tinystories_valid_head.txt"),
       "--max-tokens", "64", "-q", "-t", "1"});
  ASSERT_EQ(profiled.exit_code, 0) << profiled.err;
  // pi-run alone in a directory, with a PATH without pi-place.
  const fs::path lonely = fs::path(test::ScratchDir()) / "lonely";
  fs::create_directories(lonely);
  fs::copy_file(PI_RUN_PATH, lonely / "pi-run", fs::copy_options::overwrite_existing);
  std::vector<std::string> args = {"PATH=/nonexistent", (lonely / "pi-run").string()};
  for (const std::string& a : Args(model, {"--vram-budget", "3900K"})) args.push_back(a);
  ExpectOneLineError(test::RunProgram("/usr/bin/env", args),
                     "pi-place program is neither beside this program nor on PATH");
}

TEST(PiRunPlanTest, BadPlansAndFlagsAreOneLine) {
  const std::string model = ModelInOwnDirectory("bad");
  const std::string stories = ModelInOwnDirectory("bad_stories", BundledModel::kStories260K);
  const std::string other = fs::path(stories).parent_path() / "other.plan.pi";
  WriteRandomPlan(stories, other, 0.5);
  ExpectOneLineError(PiRun(Args(model, {"--plan", other})), "was made for another model");
  ExpectOneLineError(PiRun(Args(model, {"--plan", "/no/such.plan.pi"})), "/no/such.plan.pi");
  ExpectOneLineError(PiRun(Args(model, {"--plan", model})), "--plan");  // a model, not a plan
  ExpectOneLineError(PiRun(Args(model, {"--plan", other, "--vram-budget", "8G"})),
                     "--plan and --vram-budget cannot be combined");
  ExpectOneLineError(PiRun(Args(model, {"--vram-budget", "lots"})), "--vram-budget");
  ExpectOneLineError(PiRun({"-m", model, "--plan", other, "--gpu-backend", "tpu", "-p", "x"}),
                     "--gpu-backend must be auto, cuda or cpu");
}

}  // namespace
}  // namespace pinfer
