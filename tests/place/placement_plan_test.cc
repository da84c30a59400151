#include "runtime/model/placement_plan.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/place/test_models.h"

namespace pinfer {
namespace {

using testing_support::TempPath;

PlacementPlan Sample() {
  PlacementPlan p;
  p.model_digest = "0123456789abcdef";
  p.n_layers = 3;
  p.n_ff = 8;
  p.budget_bytes = 1 << 20;
  p.context = 64;
  p.batch = 1;
  p.group_size = 2;
  p.objective = "latency";
  p.hardware = "h100";
  p.solver = "cbc optimal";
  p.gpu_tensors = {"blk.0.attn_norm", "blk.0.attn_q", "output"};
  p.bytes = {.workspace = 100,
             .norms = 20,
             .attention = 300,
             .kv = 40,
             .ffn = 500,
             .predictor = 60,
             .output = 70};
  p.expected_coverage = 0.75;
  p.expected_latency_ms = 1.5;
  p.expected_gpu_ms = 0.5;
  p.expected_cpu_ms = 1.0;
  p.expected_sync_ms = 0.1;
  p.attention_on_gpu = {1, 0, 0};
  p.predictor_on_gpu = {1, 0, 1};
  p.min_share_neurons = {2, 2, 4};
  p.ffn_gpu_coverage = {0.9f, 0.0f, 0.6f};
  p.ffn_gpu_neurons = {{0, 3, 5, 7}, {}, {1, 2, 4, 6}};
  return p;
}

TEST(PlacementPlanTest, RoundTripsEveryField) {
  const std::string path = TempPath("roundtrip.plan.pi");
  const PlacementPlan p = Sample();
  ASSERT_TRUE(p.Write(path).ok());
  absl::StatusOr<PlacementPlan> back = PlacementPlan::Read(path, p.model_digest);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->n_layers, 3);
  EXPECT_EQ(back->n_ff, 8);
  EXPECT_EQ(back->budget_bytes, p.budget_bytes);
  EXPECT_EQ(back->context, 64);
  EXPECT_EQ(back->batch, 1);
  EXPECT_EQ(back->group_size, 2);
  EXPECT_EQ(back->objective, "latency");
  EXPECT_EQ(back->hardware, "h100");
  EXPECT_EQ(back->kv_dtype, "f16");
  EXPECT_EQ(back->solver, "cbc optimal");
  EXPECT_EQ(back->gpu_tensors, p.gpu_tensors);
  EXPECT_EQ(back->bytes, p.bytes);
  EXPECT_DOUBLE_EQ(back->expected_coverage, 0.75);
  EXPECT_DOUBLE_EQ(back->expected_latency_ms, 1.5);
  EXPECT_DOUBLE_EQ(back->expected_sync_ms, 0.1);
  EXPECT_EQ(back->attention_on_gpu, p.attention_on_gpu);
  EXPECT_EQ(back->predictor_on_gpu, p.predictor_on_gpu);
  EXPECT_EQ(back->min_share_neurons, p.min_share_neurons);
  EXPECT_EQ(back->ffn_gpu_coverage, p.ffn_gpu_coverage);
  EXPECT_EQ(back->ffn_gpu_neurons, p.ffn_gpu_neurons);  // the empty list of layer 1 included
  EXPECT_EQ(back->GpuNeuronCount(), 8);
  EXPECT_TRUE(back->TensorOnGpu("output"));
  EXPECT_FALSE(back->TensorOnGpu("blk.1.attn_q"));
}

TEST(PlacementPlanTest, RejectsAPlanForAnotherModel) {
  const std::string path = TempPath("other.plan.pi");
  ASSERT_TRUE(Sample().Write(path).ok());
  absl::StatusOr<PlacementPlan> other = PlacementPlan::Read(path, "ffffffffffffffff");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("was made for another model"), std::string::npos);
  EXPECT_NE(other.status().message().find(path), std::string::npos);
}

TEST(PlacementPlanTest, ValidationNamesTheProblemAndWritesNothing) {
  struct Case {
    const char* what;
    void (*mutate)(PlacementPlan&);
  };
  const Case cases[] = {
      {"not sorted",
       [](PlacementPlan& p) {
         p.ffn_gpu_neurons[0] = {3, 0, 5, 7};
       }},
      {"inside [0, 8)",
       [](PlacementPlan& p) {
         p.ffn_gpu_neurons[2] = {1, 2, 4, 8};
       }},
      {"below its minimum share",
       [](PlacementPlan& p) {
         p.ffn_gpu_neurons[2] = {1, 2};
       }},
      {"predictor must be on the GPU", [](PlacementPlan& p) { p.predictor_on_gpu[1] = 1; }},
      {"more than its budget", [](PlacementPlan& p) { p.budget_bytes = 100; }},
      // Four parts of 2^62 sum to 2^64 + 630: the total wraps below the budget.
      {"a part of 4611686018427387904 GPU bytes, more than its budget",
       [](PlacementPlan& p) {
         p.bytes.workspace = p.bytes.norms = p.bytes.attention = p.bytes.kv = uint64_t{1} << 62;
       }},
      {"do not match n_layers", [](PlacementPlan& p) { p.attention_on_gpu.pop_back(); }},
      {"not coverage or latency", [](PlacementPlan& p) { p.objective = "speed"; }},
  };
  for (const Case& c : cases) {
    PlacementPlan p = Sample();
    c.mutate(p);
    const absl::Status s = p.Validate();
    EXPECT_FALSE(s.ok()) << c.what;
    EXPECT_NE(s.message().find(c.what), std::string::npos) << s.message();
    const std::string path = TempPath("invalid.plan.pi");
    EXPECT_FALSE(p.Write(path).ok());
    EXPECT_FALSE(std::filesystem::exists(path)) << c.what;
  }
}

TEST(PlacementPlanTest, RejectsATruncatedFile) {
  const std::string path = TempPath("truncated.plan.pi");
  ASSERT_TRUE(Sample().Write(path).ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  absl::StatusOr<PlacementPlan> back = PlacementPlan::Read(path);
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find(path), std::string::npos);
}

}  // namespace
}  // namespace pinfer
