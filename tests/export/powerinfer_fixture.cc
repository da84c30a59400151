#include "tests/export/powerinfer_fixture.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "tests/convert/gguf_builder.h"

namespace pinfer::testing {
namespace {

constexpr uint32_t kF32 = 0, kF16 = 1;

std::vector<uint8_t> Encode(const std::vector<float>& values, uint64_t rows, uint64_t cols,
                            DType dtype) {
  const uint64_t row_bytes = *RowBytes(dtype, cols);
  std::vector<uint8_t> data(row_bytes * rows);
  for (uint64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(EncodeRow(values.data() + r * cols, cols, dtype, data.data() + r * row_bytes).ok());
  }
  return data;
}

}  // namespace

std::vector<uint8_t> BuildPowerInferGguf(SourceModel& model, const PowerInferFixture& fixture) {
  const ModelConfig& c = model.config;
  const Vocabulary& v = model.vocabulary;
  GgufBuilder b;
  b.set_magic("PWRI");
  if (fixture.threshold) b.AddFloat32("powerinfer.sparse_threshold", *fixture.threshold);
  b.AddString("general.architecture", "llama");
  b.AddString("general.name", c.name);
  b.AddUint32("llama.context_length", static_cast<uint32_t>(c.context_length));
  b.AddUint32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  b.AddUint32("llama.feed_forward_length", static_cast<uint32_t>(c.n_ff));
  b.AddUint32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  b.AddUint32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  b.AddUint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  b.AddUint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  b.AddFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  b.AddFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  b.AddString("tokenizer.ggml.model", "llama");
  b.AddStringArray("tokenizer.ggml.tokens", v.pieces);
  b.AddFloat32Array("tokenizer.ggml.scores", v.scores);
  b.AddInt32Array("tokenizer.ggml.token_type", v.types);
  b.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  b.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  b.AddUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  b.AddBool("tokenizer.ggml.add_bos_token", v.add_bos);
  b.AddBool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  // The weights under PowerInfer's names, matrices f16 as its convert.py writes them (its CPU
  // sparse axpy reads only f16 or q4_0 ffn_down_t), vectors f32: ffn_down_t keeps our
  // neuron-major [n_ff, dim].
  for (SourceTensor& t : model.tensors) {
    std::vector<float> values(static_cast<size_t>(t.rows() * t.cols()));
    absl::Status s = t.read_rows(0, t.rows(), values.data());
    EXPECT_TRUE(s.ok()) << s;
    const uint64_t rows = static_cast<uint64_t>(t.rows()), cols = static_cast<uint64_t>(t.cols());
    const bool vector = t.shape.size() == 1;
    b.AddTensor(t.name + ".weight",
                vector ? std::vector<uint64_t>{cols} : std::vector<uint64_t>{cols, rows},
                vector ? kF32 : kF16,
                Encode(values, rows, cols, vector ? DType::kF32 : DType::kF16));
  }
  // fc1 ~ N(0, 1/dim), fc2 ~ N(0, 1/rank): about half of the neurons predicted active.
  std::mt19937_64 rng(fixture.seed);
  const uint64_t dim = static_cast<uint64_t>(fixture.fc1_dim != 0 ? fixture.fc1_dim : c.dim);
  const uint64_t rank = static_cast<uint64_t>(fixture.rank), ff = static_cast<uint64_t>(c.n_ff);
  const int64_t layers = fixture.predictor_layers >= 0 ? fixture.predictor_layers : c.n_layers;
  const DType fc_dtype = fixture.fc_ggml_type == kF16 ? DType::kF16 : DType::kF32;
  for (int64_t l = 0; l < layers; ++l) {
    std::normal_distribution<float> w1(0.0f, 1.0f / std::sqrt(static_cast<float>(dim)));
    std::normal_distribution<float> w2(0.0f, 1.0f / std::sqrt(static_cast<float>(rank)));
    std::vector<float> fc1(rank * dim), fc2(ff * rank);
    for (float& x : fc1) x = w1(rng);
    for (float& x : fc2) x = w2(rng);
    b.AddTensor(absl::StrCat("blk.", l, ".fc1.weight"), {dim, rank}, fixture.fc_ggml_type,
                Encode(fc1, rank, dim, fc_dtype));
    b.AddTensor(absl::StrCat("blk.", l, ".fc2.weight"), {rank, ff}, fixture.fc_ggml_type,
                Encode(fc2, ff, rank, fc_dtype));
  }
  return b.Build();
}

std::vector<float> DecodeGgufTensor(const GgufFile& gguf, const std::string& name) {
  const GgufTensorInfo* info = gguf.FindTensor(name);
  EXPECT_NE(info, nullptr) << name;
  if (info == nullptr) return {};
  const DType dtype = *FindGgmlType(info->ggml_type)->dtype;
  const uint64_t cols = info->ne[0], rows = info->ne.size() == 2 ? info->ne[1] : 1;
  const uint64_t row_bytes = *RowBytes(dtype, cols);
  std::vector<float> out(rows * cols);
  for (uint64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(
        DecodeRow(gguf.TensorData(*info).data() + r * row_bytes, cols, dtype, out.data() + r * cols)
            .ok());
  }
  return out;
}

}  // namespace pinfer::testing
