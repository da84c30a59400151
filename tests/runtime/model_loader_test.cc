// Model::Load: weight views over the mapping, and one clear error for every kind of bad model.
#include <string>

#include "absl/strings/match.h"
#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "runtime/model/model.h"
#include "runtime/model/tensor_names.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::BundledModel;

TEST(ModelLoaderTest, BindsEveryWeightOfStories260K) {
  const std::string path = test::ConvertedModel(BundledModel::kStories260K, DType::kF32);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path);
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  EXPECT_EQ(m.config().dim, 64);
  EXPECT_EQ(m.config().n_layers, 5);
  EXPECT_EQ(m.config().n_kv_heads, 4);
  EXPECT_EQ(m.config().n_ff, 172);
  ASSERT_TRUE(m.vocabulary().has_value());
  EXPECT_EQ(m.vocabulary()->size(), 512u);
  // Tied: the classifier is the embedding matrix itself, in the mapping.
  EXPECT_EQ(m.output().data, m.token_embedding().data);
  EXPECT_EQ(m.token_embedding().rows, 512);
  EXPECT_EQ(m.token_embedding().cols, 64);
  EXPECT_EQ(m.token_embedding().row_bytes, 64u * 4);
  const TensorInfo* embd = m.file().Find(tensor_names::kTokenEmbedding);
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(m.token_embedding().data, m.file().DataAs<uint8_t>(*embd));
  const LayerWeights& w = m.layer(4);
  EXPECT_EQ(w.attn_k.rows, 32);
  EXPECT_EQ(w.attn_output.cols, 64);
  EXPECT_EQ(w.ffn_down_t.rows, 172);
  EXPECT_EQ(w.ffn_down_t.cols, 64);
  uint64_t all = 0;
  for (const TensorInfo& t : m.file().tensors()) all += t.size;
  EXPECT_EQ(m.WeightBytes(), all);
  EXPECT_EQ(m.WeightDTypeSummary(), "f32");
}

TEST(ModelLoaderTest, QuantizedViewsHaveBlockRowBytes) {
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Load(test::ConvertedModel(BundledModel::kReluLlama260K, DType::kQ4_0));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->layer(0).ffn_gate.dtype, DType::kQ4_0);
  EXPECT_EQ((*model)->layer(0).ffn_gate.row_bytes, 2u * 18);  // 64 columns: two blocks
  EXPECT_EQ((*model)->config().norm_act.kind, ActivationKind::kShiftedRelu);
  // pi-convert keeps the classifier of a q4_0 model at q8_0.
  EXPECT_EQ((*model)->WeightDTypeSummary(), "mixed (q4_0, q8_0)");
}

class BadModelTest : public ::testing::Test {
 protected:
  std::string source_ = test::ConvertedModel(BundledModel::kStories260K, DType::kF32);

  // Loads a rewritten copy and returns the error.
  absl::Status LoadEdited(const std::string& name,
                          const std::function<void(Metadata&)>& edit_metadata,
                          const std::function<void(std::vector<TensorSpec>&)>& edit_tensors = {},
                          const ModelLoadOptions& options = {}) {
    path_ = test::ScratchDir() + "/" + name + ".pi";
    absl::Status written = test::RewriteModel(source_, path_, edit_metadata, edit_tensors);
    EXPECT_TRUE(written.ok()) << written;
    return Model::Load(path_, options).status();
  }
  std::string path_;
};

void ExpectMentions(const absl::Status& status, std::initializer_list<const char*> parts) {
  EXPECT_FALSE(status.ok());
  for (const char* part : parts) {
    EXPECT_TRUE(absl::StrContains(status.message(), part)) << status << " lacks '" << part << "'";
  }
  EXPECT_FALSE(absl::StrContains(status.message(), "\n")) << status;
}

TEST_F(BadModelTest, WrongShapeNamesFileTensorAndBothShapes) {
  const absl::Status s = LoadEdited("wrong_shape", nullptr, [](std::vector<TensorSpec>& specs) {
    for (TensorSpec& spec : specs) {
      if (spec.name == "blk.3.attn_v") spec.shape = {64, 64};
    }
  });
  ExpectMentions(s, {path_.c_str(), "blk.3.attn_v", "[64, 64]", "[32, 64]"});
}

TEST_F(BadModelTest, MissingTensor) {
  const absl::Status s = LoadEdited("missing_tensor", nullptr, [](std::vector<TensorSpec>& specs) {
    std::erase_if(specs, [](const TensorSpec& spec) { return spec.name == "blk.1.ffn_up"; });
  });
  ExpectMentions(s, {path_.c_str(), "blk.1.ffn_up"});
}

TEST_F(BadModelTest, NormThatIsNotF32) {
  const absl::Status s = LoadEdited("f16_norm", nullptr, [](std::vector<TensorSpec>& specs) {
    for (TensorSpec& spec : specs) {
      if (spec.name == "output_norm") spec.dtype = DType::kF16;
    }
  });
  ExpectMentions(s, {path_.c_str(), "output_norm", "f16", "f32"});
}

TEST_F(BadModelTest, MatrixOfANonWeightDType) {
  const absl::Status s = LoadEdited("i32_matrix", nullptr, [](std::vector<TensorSpec>& specs) {
    for (TensorSpec& spec : specs) {
      if (spec.name == "blk.0.attn_q") spec.dtype = DType::kI32;
    }
  });
  ExpectMentions(s, {path_.c_str(), "blk.0.attn_q", "i32"});
}

TEST_F(BadModelTest, UnknownArchitecture) {
  const absl::Status s =
      LoadEdited("gpt2", [](Metadata& m) { m.SetString("general.architecture", "gpt2"); });
  ExpectMentions(s, {path_.c_str(), "unknown architecture 'gpt2'"});
}

TEST_F(BadModelTest, UnknownActivation) {
  const absl::Status s =
      LoadEdited("swish", [](Metadata& m) { m.SetString("llama.ffn_act", "swish"); });
  ExpectMentions(s, {path_.c_str(), "unknown activation 'swish'"});
}

TEST_F(BadModelTest, MissingTokenizer) {
  auto drop_tokenizer = [](Metadata& m) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : m.entries()) {
      if (key.starts_with("tokenizer.")) keys.push_back(key);
    }
    for (const std::string& key : keys) m.Erase(key);
  };
  const absl::Status s = LoadEdited("no_tokenizer", drop_tokenizer);
  ExpectMentions(s, {path_.c_str(), "no tokenizer"});
  ModelLoadOptions options;
  options.require_vocabulary = false;
  EXPECT_TRUE(LoadEdited("no_tokenizer", drop_tokenizer, {}, options).ok());
}

TEST_F(BadModelTest, TiedEmbeddingsWithAnOutputTensor) {
  const absl::Status s = LoadEdited("tied_and_output", nullptr, [](std::vector<TensorSpec>& specs) {
    specs.push_back({"output", DType::kF32, {512, 64}});
  });
  ExpectMentions(s, {path_.c_str(), "tied", "output"});
}

TEST(ModelLoaderErrorsTest, MissingFileAndWrongKind) {
  const std::string missing = test::ScratchDir() + "/does_not_exist.pi";
  const absl::Status s = Model::Load(missing).status();
  ExpectMentions(s, {missing.c_str(), "no such file"});

  const std::string profile = test::ScratchDir() + "/a_profile.pi";
  ASSERT_TRUE(WritePiFile(profile, ArtifactKind::kProfile, Metadata(), {}).ok());
  ExpectMentions(Model::Load(profile).status(), {profile.c_str(), "profile"});
}

}  // namespace
}  // namespace pinfer
