#include "tools/convert/llama2c_source.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "format/mapped_file.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/llama2c_tokenizer.h"
#include "tools/convert/tensor_source.h"

namespace pinfer {
namespace {

constexpr uint32_t kV2Magic = 0x616b3432;  // "ak42"
constexpr uint64_t kV2HeaderBytes = 256;

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// v0 stores a separate classifier as a negative vocab_size. INT32_MIN has no positive value (its
// std::abs is undefined behaviour): 0, which the header checks reject.
int32_t VocabMagnitude(int32_t vocab_size) {
  return vocab_size == INT32_MIN ? 0 : std::abs(vocab_size);
}

absl::Status CheckHeader(const std::string& path, const Header& h) {
  const int32_t values[] = {h.dim,        h.hidden_dim, h.n_layers, h.n_heads,
                            h.n_kv_heads, h.vocab_size, h.seq_len};
  for (int32_t v : values) {
    if (v <= 0 || v > (1 << 24)) {
      return absl::DataLossError(
          absl::StrCat(path, ": not a llama2.c checkpoint (implausible header)"));
    }
  }
  if (h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shapes: dim ", h.dim,
                                                   ", n_heads ", h.n_heads, ", n_kv_heads ",
                                                   h.n_kv_heads));
  }
  return absl::OkStatus();
}

// Where one logical llama2.c tensor ([count, rows, cols] as the file stores it) lives, and how to
// decode its elements.
struct StoredTensor {
  uint64_t offset = 0;         // f32 data, or the int8 values for q80
  uint64_t scales_offset = 0;  // q80: f32 scales, one per group
  int64_t elements = 0;
};

class Layout {
 public:
  Layout(bool quantized, int64_t group_size) : quantized_(quantized), group_size_(group_size) {}

  // Reserves the next tensor of `elements` values.
  StoredTensor Next(int64_t elements) {
    StoredTensor t;
    t.offset = position_;
    t.elements = elements;
    if (quantized_) {
      t.scales_offset = position_ + elements;
      position_ += elements + 4 * (elements / group_size_);
    } else {
      position_ += 4 * elements;
    }
    return t;
  }
  StoredTensor NextF32(int64_t elements) {
    StoredTensor t{position_, 0, elements};
    position_ += 4 * elements;
    return t;
  }
  void Skip(uint64_t bytes) { position_ += bytes; }
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

 private:
  bool quantized_;
  int64_t group_size_;
  uint64_t position_ = 0;
};

// Decodes row segments of one llama2.c Q8_0 tensor ([rows, cols] of int8 values followed by one
// f32 scale per group of `group_size` consecutive values), a group at a time.
RowSegmentDecoder GroupQ8Decoder(std::shared_ptr<MappedFile> file, StoredTensor stored,
                                 int64_t cols, int64_t group_size) {
  return [file, stored, cols, group_size](int64_t row, int64_t begin, int64_t end,
                                          float* out) -> absl::Status {
    const int8_t* values = reinterpret_cast<const int8_t*>(file->data() + stored.offset);
    const uint8_t* scales = file->data() + stored.scales_offset;
    int64_t i = row * cols + begin;
    const int64_t stop = row * cols + end;
    while (i < stop) {
      const int64_t group = i / group_size;
      const int64_t group_end = std::min(stop, (group + 1) * group_size);
      float scale;
      std::memcpy(&scale, scales + 4 * group, 4);
      for (; i < group_end; ++i) *out++ = static_cast<float>(values[i]) * scale;
    }
    return absl::OkStatus();
  };
}

}  // namespace

bool LooksLikeLlama2c(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok() || (*file)->size() < 28) return false;
  uint32_t magic;
  std::memcpy(&magic, (*file)->data(), 4);
  if (magic == kV2Magic) return true;
  Header h;
  std::memcpy(&h, (*file)->data(), sizeof(h));
  h.vocab_size = VocabMagnitude(h.vocab_size);
  // Plausible values only: an inconsistent but plausible header is still llama2.c, and
  // ReadLlama2c says what is wrong with it.
  for (int32_t v :
       {h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len}) {
    if (v <= 0 || v > (1 << 24)) return false;
  }
  return true;
}

absl::StatusOr<SourceModel> ReadLlama2c(const std::string& path, const Llama2cOptions& options) {
  absl::StatusOr<std::unique_ptr<MappedFile>> opened = MappedFile::Open(path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<MappedFile> file = *std::move(opened);
  if (file->size() < sizeof(Header)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: too small for a llama2.c header"));
  }
  uint32_t magic;
  std::memcpy(&magic, file->data(), 4);
  const bool v2 = magic == kV2Magic;
  Header h;
  bool shared_classifier;
  int32_t group_size = 0;
  uint64_t data_start;
  if (v2) {
    if (file->size() < kV2HeaderBytes) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated: too small for a llama2.c v2 header"));
    }
    int32_t version;
    std::memcpy(&version, file->data() + 4, 4);
    if (version != 2) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": llama2.c checkpoint version ",
                                                     version, " is not supported (0 or 2)"));
    }
    std::memcpy(&h, file->data() + 8, sizeof(h));
    shared_classifier = file->data()[36] != 0;
    std::memcpy(&group_size, file->data() + 37, 4);
    data_start = kV2HeaderBytes;
  } else {
    std::memcpy(&h, file->data(), sizeof(h));
    shared_classifier = h.vocab_size > 0;
    h.vocab_size = VocabMagnitude(h.vocab_size);
    data_start = sizeof(Header);
  }
  if (absl::Status s = CheckHeader(path, h); !s.ok()) return s;
  const int64_t dim = h.dim, ff = h.hidden_dim, L = h.n_layers, vocab = h.vocab_size;
  const int64_t head_dim = dim / h.n_heads, kv_dim = head_dim * h.n_kv_heads;
  if (v2) {
    if (group_size <= 0 || dim % group_size != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": Q8_0 group size ", group_size, " does not divide dim ", dim));
    }
    for (int64_t n : {dim * dim, kv_dim * dim, ff * dim, vocab * dim}) {
      if (n % group_size != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": a tensor of ", n, " values is not a multiple of the group size ", group_size));
      }
    }
  }

  // Reject sizes the file cannot hold before any offset is computed, so that absurd headers can
  // neither overflow the layout arithmetic nor point outside the mapping.
  const double implied_values =
      2.0 * vocab * dim +
      static_cast<double>(L) * (2.0 * dim + 2.0 * dim * dim + 2.0 * kv_dim * dim + 3.0 * ff * dim) +
      dim + static_cast<double>(h.seq_len) * head_dim;
  if (implied_values > 4.0 * static_cast<double>(file->size()) + 1e6) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: the header implies about ",
                                            static_cast<uint64_t>(implied_values),
                                            " weights, the file has ", file->size(), " bytes"));
  }

  SourceModel model;
  model.format = v2 ? "llama2.c v2 (Q8_0)" : "llama2.c v0 (f32)";
  model.source_files = {path, options.tokenizer_path};
  ModelConfig& c = model.config;
  c.name = std::filesystem::path(path).stem().string();
  c.dim = dim;
  c.n_layers = L;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = head_dim;
  c.n_ff = ff;
  c.vocab_size = vocab;
  c.context_length = h.seq_len;
  c.rope_theta = 10000.0;
  c.rms_eps = 1e-5;
  c.tied_embeddings = shared_classifier;
  c.ffn_act = options.ffn_act;
  c.norm_act = options.norm_act;
  c.rope_source_layout = "interleaved";

  // The file's tensor order. Per-layer tensors are stacked [L, rows, cols].
  auto layout = std::make_shared<Layout>(v2, group_size);
  layout->set_position(data_start);
  StoredTensor rms_att, rms_ffn, rms_final, embedding, wq, wk, wv, wo, w1, w2, w3, classifier;
  // Per-layer matrices: v0 stacks them [L, rows, cols]; v2 stores each layer's int8 values
  // followed by its scales. One StoredTensor per layer covers both.
  std::vector<StoredTensor> layer_tensors[7];  // wq wk wv wo w1 w2 w3, one entry per layer
  const int64_t layer_elements[7] = {dim * dim, kv_dim * dim, kv_dim * dim, dim * dim,
                                     ff * dim,  dim * ff,     ff * dim};
  auto next_layers = [&](int kind, bool as_f32) {
    for (int64_t l = 0; l < L; ++l) {
      layer_tensors[kind].push_back(as_f32 ? layout->NextF32(layer_elements[kind])
                                           : layout->Next(layer_elements[kind]));
    }
  };
  if (v2) {
    rms_att = layout->NextF32(L * dim);
    rms_ffn = layout->NextF32(L * dim);
    rms_final = layout->NextF32(dim);
    embedding = layout->Next(vocab * dim);
    for (int kind = 0; kind < 7; ++kind) next_layers(kind, false);
    if (!shared_classifier) classifier = layout->Next(vocab * dim);
  } else {
    embedding = layout->NextF32(vocab * dim);
    rms_att = layout->NextF32(L * dim);
    for (int kind = 0; kind < 4; ++kind) next_layers(kind, true);
    rms_ffn = layout->NextF32(L * dim);
    for (int kind = 4; kind < 7; ++kind) next_layers(kind, true);
    rms_final = layout->NextF32(dim);
    layout->Skip(static_cast<uint64_t>(h.seq_len) * head_dim * 4);  // legacy RoPE tables
    if (!shared_classifier) classifier = layout->NextF32(vocab * dim);
  }
  if (layout->position() != file->size()) {
    return absl::DataLossError(absl::StrCat(
        path, layout->position() > file->size() ? ": truncated: " : ": has trailing bytes: ",
        "the header implies ", layout->position(), " bytes, the file has ", file->size()));
  }

  // Every tensor is read in bulk: f32 ones straight from the mapping (rows or a transposed
  // gather), Q8_0 ones a group at a time.
  auto add = [&](std::string name, std::vector<uint64_t> shape, StoredTensor stored,
                 int64_t element_offset, bool f32, bool transpose) {
    const bool vector = shape.size() == 1;
    // As the file stores it: [rows, cols]; `transpose` means the file holds our matrix transposed.
    const int64_t rows = vector ? 1 : static_cast<int64_t>(transpose ? shape[1] : shape[0]);
    const int64_t cols =
        static_cast<int64_t>(vector ? shape[0] : (transpose ? shape[0] : shape[1]));
    if (f32 || !v2) {
      const StoredMatrix matrix{
          file->bytes().subspan(stored.offset + 4 * element_offset, 4 * rows * cols), DType::kF32,
          rows, cols};
      model.tensors.push_back(transpose ? TransposedTensor(std::move(name), rows, cols, DType::kF32,
                                                           StoredMatrixDecoder(matrix))
                                        : DirectTensor(std::move(name), matrix, vector));
      return;
    }
    RowSegmentDecoder decoder = GroupQ8Decoder(file, stored, cols, group_size);
    if (transpose) {
      model.tensors.push_back(
          TransposedTensor(std::move(name), rows, cols, DType::kQ8_0, std::move(decoder)));
      return;
    }
    SourceTensor t;
    t.name = std::move(name);
    t.shape = shape;
    t.native_dtype = DType::kQ8_0;  // llama2.c's groups are not GGML blocks: re-encoded
    t.read_rows = [decoder, cols](int64_t first, int64_t count, float* out) -> absl::Status {
      for (int64_t r = 0; r < count; ++r) {
        if (absl::Status s = decoder(first + r, 0, cols, out + r * cols); !s.ok()) return s;
      }
      return absl::OkStatus();
    };
    model.tensors.push_back(std::move(t));
  };
  namespace tn = tensor_names;
  const uint64_t D = dim, F = ff, V = vocab, KV = kv_dim;
  add(tn::kTokenEmbedding, {V, D}, embedding, 0, false, false);
  for (int64_t l = 0; l < L; ++l) {
    const int layer = static_cast<int>(l);
    add(tn::AttnNorm(layer), {D}, rms_att, l * dim, true, false);
    add(tn::AttnQ(layer), {D, D}, layer_tensors[0][l], 0, false, false);
    add(tn::AttnK(layer), {KV, D}, layer_tensors[1][l], 0, false, false);
    add(tn::AttnV(layer), {KV, D}, layer_tensors[2][l], 0, false, false);
    add(tn::AttnOutput(layer), {D, D}, layer_tensors[3][l], 0, false, false);
    add(tn::FfnNorm(layer), {D}, rms_ffn, l * dim, true, false);
    add(tn::FfnGate(layer), {F, D}, layer_tensors[4][l], 0, false, false);
    add(tn::FfnUp(layer), {F, D}, layer_tensors[6][l], 0, false, false);
    add(tn::FfnDownT(layer), {F, D}, layer_tensors[5][l], 0, false, true);
  }
  add(tn::kOutputNorm, {D}, rms_final, 0, true, false);
  if (!shared_classifier) add(tn::kOutput, {V, D}, classifier, 0, false, false);

  if (options.tokenizer_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a llama2.c checkpoint has no tokenizer: pass --tokenizer tokenizer.bin"));
  }
  absl::StatusOr<Vocabulary> vocabulary = ReadLlama2cTokenizer(options.tokenizer_path, vocab);
  if (!vocabulary.ok()) return vocabulary.status();
  model.vocabulary = *std::move(vocabulary);
  model.keep_alive.push_back(file);
  return model;
}

}  // namespace pinfer
