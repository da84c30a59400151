// -ngl N, llama.cpp's layer offload (placement_setup.h LayerOffloadPlan): the last N layers whole
// on the device, the output layer when N exceeds the layer count, as llama.cpp's i_gpu_start and
// act_gpu_layers decide; pi-run runs it (the CPU standing in for the GPU) with the dense text, and
// pi-run and pi-server refuse it next to --plan or --vram-budget in one line.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/app/placement_setup.h"
#include "tests/hybrid/hybrid_test_util.h"
#include "tests/runtime/test_models.h"

namespace pinfer::hybrid_test {
namespace {

using test::BundledModel;

TEST(LayerOffloadTest, TheLastLayersAndThenTheOutputLayer) {
  std::unique_ptr<Model> model = LoadModel(BundledModel::kReluLlama260K);
  ASSERT_NE(model, nullptr);
  const int L = static_cast<int>(model->n_layers());
  ASSERT_EQ(L, 4);
  const int64_t n_ff = model->config().n_ff;
  const bool tied = model->config().tied_embeddings;
  struct Case {
    int ngl;
    std::vector<uint8_t> attention;
    bool output;
  };
  for (const Case& c : {Case{0, {0, 0, 0, 0}, false}, Case{1, {0, 0, 0, 1}, false},
                        Case{3, {0, 1, 1, 1}, false}, Case{4, {1, 1, 1, 1}, false},
                        Case{5, {1, 1, 1, 1}, true}, Case{99, {1, 1, 1, 1}, true}}) {
    const PlacementPlan plan = LayerOffloadPlan(*model, c.ngl);
    EXPECT_EQ(plan.attention_on_gpu, c.attention) << "-ngl " << c.ngl;
    EXPECT_EQ(plan.ClassifierOnGpu(tied), c.output) << "-ngl " << c.ngl;
    for (int l = 0; l < L; ++l) {
      // Whole layers: every neuron of an offloaded layer, none of the others, no predictor.
      EXPECT_EQ(static_cast<int64_t>(plan.ffn_gpu_neurons[static_cast<size_t>(l)].size()),
                c.attention[static_cast<size_t>(l)] ? n_ff : 0)
          << "-ngl " << c.ngl << " layer " << l;
      EXPECT_EQ(plan.predictor_on_gpu[static_cast<size_t>(l)], 0);
    }
    EXPECT_EQ(plan.bytes.output > 0, c.output);
  }
}

// The plan runs: the CPU standing in for the device gives the dense logits and text.
TEST(LayerOffloadTest, OffloadedLayersGiveTheDenseLogits) {
  for (BundledModel which : {BundledModel::kStories260K, BundledModel::kReluLlama260K}) {
    std::unique_ptr<Model> model = LoadModel(which);
    ASSERT_NE(model, nullptr);
    const PlacedRun dense = RunPlaced(*model, {}, {});
    for (int ngl : {1, 3, static_cast<int>(model->n_layers()) + 1}) {
      const PlacementPlan plan = LayerOffloadPlan(*model, ngl);
      const PlacedRun placed =
          RunPlaced(*model, plan.ffn_gpu_neurons,
                    {plan.attention_on_gpu, plan.ClassifierOnGpu(model->config().tied_embeddings)});
      ExpectSameLogits(dense.logits, placed.logits, "-ngl " + std::to_string(ngl));
      EXPECT_EQ(dense.greedy, placed.greedy) << "-ngl " << ngl;
    }
  }
}

const std::vector<std::string> kGenerate = {"-p", "Once upon a time", "-n", "16", "--temp", "0",
                                            "-t", "1"};

std::vector<std::string> Args(std::vector<std::string> extra) {
  std::vector<std::string> args = {"-m", test::ConvertedModel(BundledModel::kReluLlama260K)};
  args.insert(args.end(), kGenerate.begin(), kGenerate.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(LayerOffloadTest, PiRunOffloadsLayersWithTheDenseText) {
  const test::ProgramResult dense = test::RunProgram(PI_RUN_PATH, Args({"--plan", "none"}));
  ASSERT_EQ(dense.exit_code, 0) << dense.err;
  const test::ProgramResult r =
      test::RunProgram(PI_RUN_PATH, Args({"-ngl", "5", "--gpu-backend", "cpu"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, dense.out);
  for (const char* s : {"plan -ngl 5: ", "attention of 4 of 4 layers and the classifier on the GPU",
                        "VRAM (cpu stand-in): ", "attention ", "kv ", "ffn ", "output "}) {
    EXPECT_TRUE(absl::StrContains(r.err, s)) << r.err << " lacks " << s;
  }
  // Not "of the budget": -ngl has none.
  EXPECT_FALSE(absl::StrContains(r.err, "of the budget")) << r.err;
}

void ExpectOneLineError(const test::ProgramResult& r, const std::string& program,
                        const std::string& mention) {
  EXPECT_NE(r.exit_code, 0) << r.err;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string err = r.err.substr(0, r.err.size() - 1);
  EXPECT_EQ(err.find('\n'), std::string::npos) << r.err;
  EXPECT_TRUE(absl::StartsWith(err, program + ": error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(err, mention)) << r.err << " lacks " << mention;
}

TEST(LayerOffloadTest, RefusedWithAPlanOrABudgetInOneLine) {
  for (const char* program : {PI_RUN_PATH, PI_SERVER_PATH}) {
    const std::string name = absl::EndsWith(program, "pi-run") ? "pi-run" : "pi-server";
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{"-ngl", "2", "--plan", "x.plan.pi"},
          std::vector<std::string>{"--vram-budget", "1G", "-ngl", "2"}}) {
      std::vector<std::string> args = {"-m", test::ConvertedModel(BundledModel::kReluLlama260K)};
      args.insert(args.end(), extra.begin(), extra.end());
      ExpectOneLineError(test::RunProgram(program, args), name,
                         "-ngl builds its own plan of whole layers: it cannot be combined with "
                         "--plan or --vram-budget");
    }
    ExpectOneLineError(
        test::RunProgram(program, {"-m", test::ConvertedModel(BundledModel::kReluLlama260K),
                                   "-ngl", "-2"}),
        name, "-ngl must be 0 or more layers, got -2");
  }
}

}  // namespace
}  // namespace pinfer::hybrid_test
