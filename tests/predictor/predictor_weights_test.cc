// model.predictor.pi (runtime/model/predictor_weights.h): round trip through the file with
// zero-copy views, the model digest check, and damaged or inconsistent files.
#include "runtime/model/predictor_weights.h"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "format/pi_writer.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/cpu/predictor_kernel.h"
#include "runtime/model/activation_profile.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

constexpr char kDigest[] = "00112233aabbccdd";

std::string TempPath(const std::string& name) {
  return (fs::path(testing::TempDir()) / absl::StrCat("predictor_", getpid(), "_", name)).string();
}

struct Buffers {
  std::vector<std::vector<uint8_t>> weights;
  std::vector<std::vector<float>> biases;
};

// Two layers of different ranks with random weights in `dtype`.
PredictorWeights MakePredictor(DType dtype, int64_t dim = 64, int64_t n_ff = 40) {
  auto buffers = std::make_shared<Buffers>();
  std::mt19937 g(3);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = normal(g);
    return v;
  };
  auto encode = [&](int64_t rows, int64_t cols) {
    const std::vector<float> values = random(static_cast<size_t>(rows * cols));
    const uint64_t row_bytes = *RowBytes(dtype, static_cast<uint64_t>(cols));
    std::vector<uint8_t> bytes(row_bytes * static_cast<uint64_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), dtype,
                            bytes.data() + static_cast<uint64_t>(r) * row_bytes)
                      .ok());
    }
    return bytes;
  };
  PredictorWeights p;
  p.model_digest = kDigest;
  p.dim = dim;
  p.n_ff = n_ff;
  p.dtype = dtype;
  p.target_recall = 0.99;
  p.fire_rule = "nonzero";
  buffers->weights.reserve(4);
  buffers->biases.reserve(4);
  for (int64_t rank : {32, 64}) {
    PredictorLayer layer;
    layer.rank = rank;
    layer.logit_threshold = -0.5f + static_cast<float>(rank) / 256;
    layer.threshold = SigmoidOf(layer.logit_threshold);
    buffers->weights.push_back(encode(rank, dim));
    layer.w1 = buffers->weights.back();
    buffers->biases.push_back(random(static_cast<size_t>(rank)));
    layer.b1 = buffers->biases.back();
    buffers->weights.push_back(encode(n_ff, rank));
    layer.w2 = buffers->weights.back();
    buffers->biases.push_back(random(static_cast<size_t>(n_ff)));
    layer.b2 = buffers->biases.back();
    layer.report = {0.991, 0.8 + rank / 1000.0, 0.3, 0.25, 1000 + rank, 100 + rank};
    p.layers.push_back(layer);
  }
  p.storage = buffers;
  return p;
}

// Rewrites a predictor file after editing its metadata and tensor list.
void Rewrite(const std::string& from, const std::string& to,
             const std::function<void(Metadata&)>& edit_metadata,
             const std::function<void(std::vector<TensorData>&)>& edit_tensors = {}) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(from);
  ASSERT_TRUE(file.ok()) << file.status();
  Metadata m = (*file)->metadata();
  if (edit_metadata) edit_metadata(m);
  std::vector<TensorData> tensors;
  for (const TensorInfo& t : (*file)->tensors()) {
    const std::span<const uint8_t> bytes = (*file)->Data(t);
    tensors.push_back({{t.name, t.dtype, t.shape}, {bytes.begin(), bytes.end()}});
  }
  if (edit_tensors) edit_tensors(tensors);
  ASSERT_TRUE(WritePiFile(to, ArtifactKind::kPredictor, m, tensors).ok());
}

TEST(PredictorWeightsTest, RoundTripsWithZeroCopyViews) {
  for (DType dtype : {DType::kF16, DType::kQ8_0, DType::kF32}) {
    SCOPED_TRACE(DTypeName(dtype));
    const PredictorWeights p = MakePredictor(dtype);
    ASSERT_TRUE(p.Validate().ok()) << p.Validate();
    const std::string path = TempPath("roundtrip.pi");
    Metadata provenance;
    provenance.SetString("provenance.tool", "test");
    ASSERT_TRUE(p.Write(path, provenance).ok());
    absl::StatusOr<PredictorWeights> back = PredictorWeights::Read(path, kDigest);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->model_digest, kDigest);
    EXPECT_EQ(back->n_layers(), 2);
    EXPECT_EQ(back->dim, 64);
    EXPECT_EQ(back->n_ff, 40);
    EXPECT_EQ(back->dtype, dtype);
    EXPECT_EQ(back->fire_rule, "nonzero");
    EXPECT_DOUBLE_EQ(back->target_recall, 0.99);
    for (int64_t l = 0; l < 2; ++l) {
      const PredictorLayer& a = p.layers[static_cast<size_t>(l)];
      const PredictorLayer& b = back->layers[static_cast<size_t>(l)];
      EXPECT_EQ(b.rank, a.rank);
      EXPECT_EQ(b.logit_threshold, a.logit_threshold);
      EXPECT_EQ(b.threshold, a.threshold);
      EXPECT_TRUE(std::equal(a.w1.begin(), a.w1.end(), b.w1.begin(), b.w1.end()));
      EXPECT_TRUE(std::equal(a.w2.begin(), a.w2.end(), b.w2.begin(), b.w2.end()));
      EXPECT_TRUE(std::equal(a.b1.begin(), a.b1.end(), b.b1.begin(), b.b1.end()));
      EXPECT_TRUE(std::equal(a.b2.begin(), a.b2.end(), b.b2.begin(), b.b2.end()));
      EXPECT_FLOAT_EQ(b.report.recall, 0.991);
      EXPECT_FLOAT_EQ(b.report.precision, a.report.precision);
      EXPECT_EQ(b.report.train_samples, a.report.train_samples);
      EXPECT_EQ(b.report.validation_samples, a.report.validation_samples);
      EXPECT_EQ(back->LayerBytes(l), p.LayerBytes(l));
      // The views point into the mapping and evaluate like the originals.
      std::vector<float> x(64);
      for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
      cpu::PredictorScratch s1, s2;
      const std::span<const float> z1 = cpu::PredictorLogits(p.View(l), x.data(), 1, s1);
      const std::span<const float> z2 = cpu::PredictorLogits(back->View(l), x.data(), 1, s2);
      EXPECT_TRUE(std::equal(z1.begin(), z1.end(), z2.begin(), z2.end()));
      EXPECT_EQ(back->View(l).rank(), a.rank);
      EXPECT_EQ(back->View(l).n_ff(), 40);
      EXPECT_EQ(back->View(l).logit_threshold, a.logit_threshold);
    }
    fs::remove(path);
  }
}

TEST(PredictorWeightsTest, RejectsAPredictorForAnotherModel) {
  const std::string path = TempPath("other.pi");
  ASSERT_TRUE(MakePredictor(DType::kF16).Write(path).ok());
  absl::StatusOr<PredictorWeights> other = PredictorWeights::Read(path, "ffffffffffffffff");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(other.status().message(), path)) << other.status();
  EXPECT_TRUE(absl::StrContains(other.status().message(), "trained for another model"));
  EXPECT_TRUE(absl::StrContains(other.status().message(), kDigest));
  fs::remove(path);
}

TEST(PredictorWeightsTest, RejectsOtherArtifactKinds) {
  const std::string path = TempPath("profile.pi");
  ActivationProfile profile;
  profile.model_digest = kDigest;
  profile.n_layers = 1;
  profile.n_ff = 2;
  profile.tokens = 1;
  profile.fire_count = {1, 0};
  profile.mean_abs = {1, 0};
  profile.threshold = {0};
  ASSERT_TRUE(profile.Write(path).ok());
  absl::StatusOr<PredictorWeights> read = PredictorWeights::Read(path);
  ASSERT_FALSE(read.ok());
  EXPECT_TRUE(absl::StartsWith(read.status().message(), path)) << read.status();
  fs::remove(path);
}

TEST(PredictorWeightsTest, RejectsInconsistentFiles) {
  const std::string good = TempPath("good.pi"), bad = TempPath("bad.pi");
  ASSERT_TRUE(MakePredictor(DType::kF16).Write(good).ok());
  struct Damage {
    const char* what;
    std::function<void(Metadata&)> metadata;
    std::function<void(std::vector<TensorData>&)> tensors;
    const char* mention;
  };
  const std::vector<Damage> cases = {
      {"rank disagrees with the tensors",
       [](Metadata& m) {
         m.SetIntArray("predictor.rank", {32, 32});
       },
       {},
       "blk.1.predictor.w1"},
      {"rank array too short",
       [](Metadata& m) { m.SetIntArray("predictor.rank", {32}); },
       {},
       "predictor.rank has 1 entries for 2 layers"},
      {"missing thresholds",
       [](Metadata& m) { m.Erase("predictor.logit_threshold"); },
       {},
       "predictor.logit_threshold"},
      {"threshold not sigmoid(logit)",
       [](Metadata& m) {
         m.SetFloatArray("predictor.threshold", {0.5f, 0.5f});
       },
       {},
       "is not sigmoid"},
      {"logit threshold out of range",
       [](Metadata& m) {
         m.SetFloatArray("predictor.logit_threshold", {40.0f, 0.0f});
         m.SetFloatArray("predictor.threshold", {1.0f, 0.5f});
       },
       {},
       "outside [-16, 16]"},
      {"n_ff disagrees",
       [](Metadata& m) { m.SetInt("predictor.n_ff", 41); },
       {},
       "blk.0.predictor.w2"},
      {"missing tensor",
       {},
       [](std::vector<TensorData>& t) {
         std::erase_if(t, [](const TensorData& d) { return d.spec.name == "blk.1.predictor.b2"; });
       },
       "blk.1.predictor.b2"},
      {"bias not f32",
       {},
       [](std::vector<TensorData>& t) {
         for (TensorData& d : t) {
           if (d.spec.name == "blk.0.predictor.b1") {
             d.spec.dtype = DType::kI32;
           }
         }
       },
       "biases must be f32"},
      {"mixed weight dtypes",
       {},
       [](std::vector<TensorData>& t) {
         for (TensorData& d : t) {
           if (d.spec.name == "blk.0.predictor.w2") {
             d.spec.dtype = DType::kBF16;
           }
         }
       },
       "expected f16 for both"},
  };
  for (const Damage& d : cases) {
    SCOPED_TRACE(d.what);
    Rewrite(good, bad, d.metadata, d.tensors);
    absl::StatusOr<PredictorWeights> read = PredictorWeights::Read(bad, kDigest);
    ASSERT_FALSE(read.ok());
    EXPECT_TRUE(absl::StartsWith(read.status().message(), bad)) << read.status();
    EXPECT_TRUE(absl::StrContains(read.status().message(), d.mention)) << read.status();
    EXPECT_EQ(read.status().message().find('\n'), absl::string_view::npos);
  }
  fs::remove(good);
  fs::remove(bad);
}

TEST(PredictorWeightsTest, AcceptsAFileWithoutTheReport) {
  const std::string good = TempPath("report.pi"), lean = TempPath("lean.pi");
  ASSERT_TRUE(MakePredictor(DType::kF16).Write(good).ok());
  Rewrite(good, lean, [](Metadata& m) {
    for (const char* key :
         {"predictor.recall", "predictor.precision", "predictor.predicted_density",
          "predictor.true_density", "predictor.train_samples", "predictor.validation_samples"}) {
      m.Erase(key);
    }
  });
  absl::StatusOr<PredictorWeights> read = PredictorWeights::Read(lean);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->layers[1].report.recall, 0.0);
  fs::remove(good);
  fs::remove(lean);
}

TEST(PredictorWeightsTest, ValidateNamesTheProblem) {
  PredictorWeights p = MakePredictor(DType::kF16);
  p.layers[1].rank = 48;  // sizes no longer match
  EXPECT_TRUE(absl::StrContains(p.Validate().message(), "predictor layer 1"));
  // q8_0 rows need multiples of 32: dim 48 cannot be stored as q8_0.
  PredictorWeights q = MakePredictor(DType::kF16, 48);
  q.dtype = DType::kQ8_0;
  EXPECT_TRUE(absl::StrContains(q.Validate().message(), "not a multiple of q8_0's block of 32"));
  PredictorWeights empty;
  EXPECT_FALSE(empty.Validate().ok());
  // Nothing is written for an invalid predictor.
  const std::string path = TempPath("invalid.pi");
  EXPECT_FALSE(p.Write(path).ok());
  EXPECT_FALSE(fs::exists(path));
}

TEST(PredictorWeightsTest, PathsAndLogits) {
  EXPECT_EQ(DefaultPredictorPath("dir/model.pi"), "dir/model.predictor.pi");
  EXPECT_EQ(DefaultPredictorPath("model"), "model.predictor.pi");
  EXPECT_EQ(PredictorTensorName(3, "w2"), "blk.3.predictor.w2");
  EXPECT_FLOAT_EQ(LogitOf(0.5), 0.0f);
  EXPECT_NEAR(SigmoidOf(LogitOf(0.9)), 0.9f, 1e-7);
}

}  // namespace
}  // namespace pinfer
