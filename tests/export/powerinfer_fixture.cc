#include "tests/export/powerinfer_fixture.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "tools/convert/gguf_writer.h"

namespace pinfer::testing {

void WritePowerInferGguf(SourceModel& model, const PowerInferFixture& fixture,
                         const std::string& path) {
  const ModelConfig& c = model.config;
  // The llama hparams and tokenizer as every GGUF of the project has them, and PowerInfer's key.
  GgufMetadata metadata = LlamaGgufMetadata(c, model.vocabulary);
  if (fixture.threshold) metadata.SetFloat32("powerinfer.sparse_threshold", *fixture.threshold);

  // The weights under PowerInfer's names, matrices f16 as its convert.py writes them (its CPU
  // sparse axpy reads only f16 or q4_0 ffn_down_t), vectors f32: ffn_down_t keeps our
  // neuron-major [n_ff, dim].
  std::vector<TensorSpec> specs;
  std::vector<std::vector<uint8_t>> data;
  auto add = [&](std::string name, DType dtype, std::vector<uint64_t> shape,
                 const std::vector<float>& values) {
    const uint64_t cols = shape.back(), rows = shape.size() == 2 ? shape[0] : 1;
    absl::StatusOr<std::vector<uint8_t>> bytes =
        EncodeMatrix(values, static_cast<int64_t>(rows), static_cast<int64_t>(cols), dtype);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    specs.push_back({std::move(name), dtype, std::move(shape)});
    data.push_back(bytes.ok() ? *std::move(bytes) : std::vector<uint8_t>{});
  };
  for (SourceTensor& t : model.tensors) {
    std::vector<float> values(static_cast<size_t>(t.rows() * t.cols()));
    absl::Status s = t.read_rows(0, t.rows(), values.data());
    EXPECT_TRUE(s.ok()) << s;
    const uint64_t rows = static_cast<uint64_t>(t.rows()), cols = static_cast<uint64_t>(t.cols());
    if (t.shape.size() == 1) {
      add(t.name + ".weight", DType::kF32, {cols}, values);
    } else {
      add(t.name + ".weight", DType::kF16, {rows, cols}, values);
    }
  }
  // fc1 ~ N(0, 1/dim), fc2 ~ N(0, 1/rank): about half of the neurons predicted active.
  std::mt19937_64 rng(fixture.seed);
  const uint64_t dim = static_cast<uint64_t>(fixture.fc1_dim != 0 ? fixture.fc1_dim : c.dim);
  const uint64_t rank = static_cast<uint64_t>(fixture.rank), ff = static_cast<uint64_t>(c.n_ff);
  const int64_t layers = fixture.predictor_layers >= 0 ? fixture.predictor_layers : c.n_layers;
  for (int64_t l = 0; l < layers; ++l) {
    std::normal_distribution<float> w1(0.0f, 1.0f / std::sqrt(static_cast<float>(dim)));
    std::normal_distribution<float> w2(0.0f, 1.0f / std::sqrt(static_cast<float>(rank)));
    std::vector<float> fc1(rank * dim), fc2(ff * rank);
    for (float& x : fc1) x = w1(rng);
    for (float& x : fc2) x = w2(rng);
    add(absl::StrCat("blk.", l, ".fc1.weight"), fixture.fc_dtype, {rank, dim}, fc1);
    add(absl::StrCat("blk.", l, ".fc2.weight"), fixture.fc_dtype, {ff, rank}, fc2);
  }

  absl::StatusOr<std::unique_ptr<GgufWriter>> writer =
      GgufWriter::Create(path, metadata, specs, GgufMagic::kPowerInfer);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::Status s = (*writer)->Append(specs[i].name, data[i]);
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::Status s = (*writer)->Commit();
  ASSERT_TRUE(s.ok()) << s;
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
