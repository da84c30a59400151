#include "tests/convert/gguf_model.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "format/dtype.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "tests/convert/gguf_builder.h"

namespace pinfer::testing {
namespace {

DType ToDType(uint32_t ggml_type) {
  switch (ggml_type) {
    case 1:
      return DType::kF16;
    case 2:
      return DType::kQ4_0;
    case 8:
      return DType::kQ8_0;
    case 30:
      return DType::kBF16;
    default:
      return DType::kF32;
  }
}

}  // namespace

std::vector<uint8_t> BuildLlamaGguf(SourceModel& model, const GgufModelOptions& options) {
  const ModelConfig& c = model.config;
  const Vocabulary& v = model.vocabulary;
  const uint32_t ggml_type = options.ggml_type;
  const std::string a = options.arch;
  GgufBuilder b;
  if (options.powerinfer) {
    b.set_magic("PWRI");
    b.AddFloat32("powerinfer.sparse_threshold", 0.0f);
  }
  b.AddString("general.architecture", a);
  b.AddString("general.name", c.name);
  b.AddUint32(a + ".context_length", static_cast<uint32_t>(c.context_length));
  b.AddUint32(a + ".embedding_length", static_cast<uint32_t>(c.dim));
  b.AddUint32(a + ".feed_forward_length", static_cast<uint32_t>(c.n_ff));
  b.AddUint32(a + ".block_count", static_cast<uint32_t>(c.n_layers));
  b.AddUint32(a + ".attention.head_count", static_cast<uint32_t>(c.n_heads));
  b.AddUint32(a + ".attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  b.AddUint32(a + ".rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  b.AddFloat32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  b.AddFloat32(a + ".rope.freq_base", static_cast<float>(c.rope_theta));
  b.AddUint32("general.file_type", ggml_type == 0   ? 0
                                   : ggml_type == 1 ? 1
                                   : ggml_type == 8 ? 7
                                   : ggml_type == 2 ? 2
                                                    : 32);
  b.AddString("tokenizer.ggml.model", "llama");
  b.AddStringArray("tokenizer.ggml.tokens", v.pieces);
  b.AddFloat32Array("tokenizer.ggml.scores", v.scores);
  b.AddInt32Array("tokenizer.ggml.token_type", v.types);
  b.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  b.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  b.AddUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  b.AddUint32("tokenizer.ggml.padding_token_id",
              v.pad_id < 0 ? 0xFFFFFFFFu : static_cast<uint32_t>(v.pad_id));
  b.AddBool("tokenizer.ggml.add_bos_token", v.add_bos);
  b.AddBool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);

  for (SourceTensor& t : model.tensors) {
    std::vector<float> values(static_cast<size_t>(t.rows() * t.cols()));
    absl::Status s = t.read_rows(0, t.rows(), values.data());
    EXPECT_TRUE(s.ok()) << s;
    std::string name = t.name;
    uint64_t rows = static_cast<uint64_t>(t.rows()), cols = static_cast<uint64_t>(t.cols());
    if (name.ends_with("ffn_down_t") && !options.powerinfer) {  // GGUF's ffn_down: [n_ff, n_embd]
      std::vector<float> transposed(values.size());
      for (uint64_t r = 0; r < rows; ++r) {
        for (uint64_t col = 0; col < cols; ++col)
          transposed[col * rows + r] = values[r * cols + col];
      }
      values.swap(transposed);
      std::swap(rows, cols);
      name.resize(name.size() - 2);
    }
    const bool vector = t.shape.size() == 1;
    const uint32_t type = vector ? 0 : ggml_type;
    const DType dtype = ToDType(type);
    const uint64_t row_bytes = *RowBytes(dtype, cols);
    std::vector<uint8_t> data(row_bytes * rows);
    for (uint64_t r = 0; r < rows; ++r) {
      EXPECT_TRUE(
          EncodeRow(values.data() + r * cols, cols, dtype, data.data() + r * row_bytes).ok());
    }
    std::vector<uint64_t> ne =
        vector ? std::vector<uint64_t>{cols} : std::vector<uint64_t>{cols, rows};
    b.AddTensor(name + ".weight", ne, type, std::move(data));
  }
  // RoPE scaling as llama.cpp's convert_hf_to_gguf.py writes it: a linear rope_scaling (one divisor
  // for every pair) as rope.scaling.type/factor, Llama 3's per-pair divisors as the f32 tensor
  // rope_freqs.
  const std::vector<float>& factors = c.rope_freq_factors;
  const bool linear = !factors.empty() && std::all_of(factors.begin(), factors.end(),
                                                      [&](float f) { return f == factors[0]; });
  if (linear) {
    b.AddString(a + ".rope.scaling.type", "linear");
    b.AddFloat32(a + ".rope.scaling.factor", factors[0]);
  } else if (!factors.empty()) {
    std::vector<uint8_t> data(c.rope_freq_factors.size() * sizeof(float));
    std::memcpy(data.data(), c.rope_freq_factors.data(), data.size());
    b.AddTensor("rope_freqs.weight", {c.rope_freq_factors.size()}, 0, std::move(data));
  }
  if (options.powerinfer) {  // a predictor MLP per layer: fc1 [dim -> 16], fc2 [16 -> n_ff]
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      b.AddTensor(p + "fc1.weight", {static_cast<uint64_t>(c.dim), 16}, 0,
                  std::vector<uint8_t>(c.dim * 16 * 4, 0));
      b.AddTensor(p + "fc2.weight", {16, static_cast<uint64_t>(c.n_ff)}, 0,
                  std::vector<uint8_t>(16 * c.n_ff * 4, 0));
    }
  }
  return b.Build();
}

}  // namespace pinfer::testing
