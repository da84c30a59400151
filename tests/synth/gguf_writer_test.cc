#include "tools/convert/gguf_writer.h"

#include <cstring>
#include <filesystem>
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/synth/synth_test_util.h"

namespace pinfer::synth::testing {
namespace {

using ::testing::HasSubstr;

TEST(GgufWriterTest, WritesMetadataAndAlignedTensorsThatParseBack) {
  ScratchDir scratch("gguf_writer");
  const std::string path = scratch.Path("t.gguf");
  GgufMetadata m;
  m.SetString("general.architecture", "llama");
  m.SetUint32("llama.block_count", 3);
  m.SetInt32("x.int", -5);
  m.SetUint64("x.u64", 1ull << 40);
  m.SetFloat32("x.float", 0.5f);
  m.SetBool("x.bool", true);
  const std::vector<std::string> tokens = {"<unk>", "▁the", ""};
  m.SetStringArray("tokenizer.ggml.tokens", tokens);
  const std::vector<float> scores = {0.0f, -1.5f, 2.0f};
  m.SetFloat32Array("tokenizer.ggml.scores", scores);
  const std::vector<int32_t> types = {2, 1, 6};
  m.SetInt32Array("tokenizer.ggml.token_type", types);
  m.SetUint32("llama.block_count", 4);  // replaces

  absl::StatusOr<std::unique_ptr<GgufWriter>> writer = GgufWriter::Create(
      path, m, {{"norm.weight", DType::kF32, {3}}, {"w.weight", DType::kQ8_0, {2, 64}}});
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::vector<float> norm = {1.0f, 2.0f, 3.0f};
  std::vector<uint8_t> q8(2 * 2 * 34);
  std::iota(q8.begin(), q8.end(), 0);
  // Tensors in any order, each in pieces.
  ASSERT_TRUE((*writer)->Append("w.weight", {q8.data(), 40}).ok());
  ASSERT_TRUE(
      (*writer)->Append("norm.weight", {reinterpret_cast<const uint8_t*>(norm.data()), 12}).ok());
  ASSERT_TRUE((*writer)->Append("w.weight", {q8.data() + 40, q8.size() - 40}).ok());
  EXPECT_FALSE(std::filesystem::exists(path));  // nothing under the name before Commit
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(std::filesystem::file_size(path), (*writer)->total_bytes());

  // Parsed by pi-convert's GGUF reader, which validates the whole structure.
  absl::StatusOr<OpenedGguf> opened = OpenGguf(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const GgufFile& file = opened->file;
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.data_offset() % 32, 0u);
  EXPECT_EQ(file.GetString("general.architecture").value(), "llama");
  EXPECT_EQ(file.GetUint("llama.block_count").value(), 4u);
  EXPECT_EQ(file.GetInt("x.int").value(), -5);
  EXPECT_EQ(file.GetUint("x.u64").value(), 1ull << 40);
  EXPECT_EQ(file.GetFloat("x.float").value(), 0.5);
  EXPECT_EQ(file.GetBool("x.bool").value(), true);
  EXPECT_EQ(file.GetStringArray("tokenizer.ggml.tokens").value(), tokens);
  EXPECT_EQ(file.GetFloatArray("tokenizer.ggml.scores").value(),
            std::vector<double>({0.0, -1.5, 2.0}));
  EXPECT_EQ(file.GetIntArray("tokenizer.ggml.token_type").value(), std::vector<int64_t>({2, 1, 6}));
  EXPECT_EQ(file.metadata().size(), 9u);
  ASSERT_EQ(file.tensors().size(), 2u);
  const GgufTensorInfo* w = file.FindTensor("w.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->ne, std::vector<uint64_t>({64, 2}));  // ne[0] is the contiguous dimension
  EXPECT_EQ(w->ggml_type, 8u);
  std::span<const uint8_t> w_data = file.TensorData(*w);
  EXPECT_EQ(std::vector<uint8_t>(w_data.begin(), w_data.end()), q8);
  const GgufTensorInfo* n = file.FindTensor("norm.weight");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->ggml_type, 0u);
  EXPECT_EQ(std::memcmp(file.TensorData(*n).data(), norm.data(), 12), 0);
}

TEST(GgufWriterTest, IncompleteOrBadWritesLeaveNoFile) {
  ScratchDir scratch("gguf_writer_bad");
  const std::string path = scratch.Path("t.gguf");
  {
    absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
        GgufWriter::Create(path, {}, {{"a", DType::kF32, {4}}});
    ASSERT_TRUE(writer.ok());
    const float v[8] = {};
    EXPECT_THAT((*writer)->Append("b", {reinterpret_cast<const uint8_t*>(v), 4}).message(),
                HasSubstr("'b' was not declared"));
    EXPECT_THAT((*writer)->Append("a", {reinterpret_cast<const uint8_t*>(v), 32}).message(),
                HasSubstr("too many bytes"));
    ASSERT_TRUE((*writer)->Append("a", {reinterpret_cast<const uint8_t*>(v), 8}).ok());
    EXPECT_THAT((*writer)->Commit().message(), HasSubstr("incomplete (8 of 16 bytes"));
  }
  EXPECT_TRUE(std::filesystem::is_empty(scratch.dir()));
  EXPECT_THAT(GgufWriter::Create(path, {}, {{"a", DType::kI32, {4}}}).status().message(),
              HasSubstr("no GGUF tensor type"));
  EXPECT_THAT(GgufWriter::Create(path, {}, {{"a", DType::kQ4_0, {2, 20}}}).status().message(),
              HasSubstr("'a'"));
  EXPECT_THAT(GgufWriter::Create(path, {}, {{"a", DType::kF32, {4}}, {"a", DType::kF32, {4}}})
                  .status()
                  .message(),
              HasSubstr("declared twice"));
  EXPECT_FALSE(GgufWriter::Create(scratch.Path("missing/t.gguf"), {}, {}).ok());
  EXPECT_TRUE(std::filesystem::is_empty(scratch.dir()));
}

// The llama metadata every GGUF of the project gets (pi-export, pi-synth, the PowerInfer
// fixtures): hparams as pi-convert's GGUF reader reads them back, and the optional keys only
// where the model has them.
TEST(GgufWriterTest, LlamaMetadataHoldsTheHparamsAndTheTokenizer) {
  ModelConfig c;
  c.name = "tiny";
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.n_ff = 96;
  c.vocab_size = 3;
  c.context_length = 128;
  c.rms_eps = 1e-6;
  c.rope_theta = 500000;
  Vocabulary v;
  v.pieces = {"<unk>", "<s>", "</s>"};
  v.scores = {0.0f, 0.0f, 0.0f};
  v.types = {2, 3, 3};
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.add_bos = true;
  ScratchDir scratch("gguf_llama_metadata");
  auto write_and_open = [&](const std::string& name) {
    const std::string path = scratch.Path(name);
    absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
        GgufWriter::Create(path, LlamaGgufMetadata(c, v), {});
    EXPECT_TRUE(writer.ok()) << writer.status();
    EXPECT_TRUE((*writer)->Commit().ok());
    absl::StatusOr<OpenedGguf> opened = OpenGguf(path);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *std::move(opened);
  };
  {
    const OpenedGguf g = write_and_open("plain.gguf");
    EXPECT_EQ(g.file.GetString("general.architecture").value(), "llama");
    EXPECT_EQ(g.file.GetString("general.name").value(), "tiny");
    EXPECT_EQ(g.file.GetUint("llama.embedding_length").value(), 64u);
    EXPECT_EQ(g.file.GetUint("llama.attention.head_count_kv").value(), 2u);
    EXPECT_EQ(g.file.GetUint("llama.feed_forward_length").value(), 96u);
    EXPECT_EQ(g.file.GetUint("llama.vocab_size").value(), 3u);
    EXPECT_FLOAT_EQ(g.file.GetFloat("llama.rope.freq_base").value(), 500000.0);
    EXPECT_EQ(g.file.GetStringArray("tokenizer.ggml.tokens").value(), v.pieces);
    EXPECT_EQ(g.file.GetUint("tokenizer.ggml.eos_token_id").value(), 2u);
    // head_dim × heads = dim, no padding token, no chat template: none of their keys.
    EXPECT_FALSE(g.file.GetUint("llama.attention.key_length").ok());
    EXPECT_FALSE(g.file.GetUint("tokenizer.ggml.padding_token_id").ok());
    EXPECT_FALSE(g.file.GetString("tokenizer.chat_template").ok());
  }
  c.head_dim = 32;  // wider heads than dim / heads
  v.pad_id = 0;
  v.chat_template = "{{ messages }}";
  const OpenedGguf g = write_and_open("wide.gguf");
  EXPECT_EQ(g.file.GetUint("llama.attention.key_length").value(), 32u);
  EXPECT_EQ(g.file.GetUint("llama.attention.value_length").value(), 32u);
  EXPECT_EQ(g.file.GetUint("tokenizer.ggml.padding_token_id").value(), 0u);
  EXPECT_EQ(g.file.GetString("tokenizer.chat_template").value(), "{{ messages }}");
}

}  // namespace
}  // namespace pinfer::synth::testing
