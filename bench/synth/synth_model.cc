#include "bench/synth/synth_model.h"

#include <omp.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>

#include "absl/strings/str_cat.h"
#include "bench/synth/down_tiles.h"
#include "bench/synth/synth_design.h"
#include "bench/synth/synth_random.h"
#include "bench/synth/synth_vocabulary.h"
#include "format/output_check.h"
#include "format/pi_writer.h"
#include "format/quant.h"
#include "format/strings.h"
#include "runtime/common/cli_common.h"
#include "runtime/model/model_config.h"
#include "runtime/model/tensor_names.h"
#include "tools/convert/gguf_writer.h"

namespace pinfer::synth {
namespace {

namespace tn = tensor_names;

#define PI_RETURN_IF_ERROR(expr)                            \
  do {                                                      \
    if (absl::Status pi_status = (expr); !pi_status.ok()) { \
      return pi_status;                                     \
    }                                                       \
  } while (false)

// Output bytes generated per parallel step before they are written: bounds memory.
constexpr uint64_t kChunkBytes = 16ull << 20;

// The .pi writer, the optional GGUF writer, and one progress bar over both.
class Outputs {
 public:
  Outputs(PiWriter& pi, GgufWriter* gguf, ProgressBar& progress,
          const std::vector<TensorSpec>& pi_tensors)
      : pi_(pi), gguf_(gguf), progress_(progress) {
    for (const TensorSpec& t : pi_tensors) {
      if (t.dtype == DType::kQ4_0x16) x16_cols_[t.name] = t.shape.back();
    }
  }

  // Appends to the .pi tensor `pi_name` and to the GGUF tensor `gguf_name`; an empty name skips
  // that output. `bytes` are whole rows in the GGUF's dtype; a .pi tensor stored as q4_0x16 gets
  // them reordered (as pi-convert does with a q4_0 GGUF).
  absl::Status Append(const std::string& pi_name, const std::string& gguf_name,
                      std::span<const uint8_t> bytes) {
    if (!pi_name.empty()) {
      std::span<const uint8_t> pi_bytes = bytes;
      if (auto x16 = x16_cols_.find(pi_name); x16 != x16_cols_.end()) {
        const uint64_t cols = x16->second, row_bytes = cols / 32 * sizeof(BlockQ4_0);
        reordered_.resize(bytes.size());
        ConvertQ4_0ToQ4_0x16(bytes.data(), reordered_.data(), bytes.size() / row_bytes, cols);
        pi_bytes = reordered_;
      }
      if (absl::Status s = pi_.Append(pi_name, pi_bytes); !s.ok()) return s;
      done_ += bytes.size();
    }
    if (gguf_ != nullptr && !gguf_name.empty()) {
      if (absl::Status s = gguf_->Append(gguf_name, bytes); !s.ok()) return s;
      done_ += bytes.size();
    }
    progress_.Update(done_);
    return absl::OkStatus();
  }
  bool has_gguf() const { return gguf_ != nullptr; }

 private:
  PiWriter& pi_;
  GgufWriter* gguf_;
  ProgressBar& progress_;
  uint64_t done_ = 0;
  std::map<std::string, uint64_t> x16_cols_;  // .pi tensors stored as q4_0x16: their row length
  std::vector<uint8_t> reordered_;
};

// A matrix generated in units of `unit_rows` rows: fill(unit, values) writes unit_rows × cols
// values. Units are independent (each seeds its own random streams), so they are generated in
// parallel, in any order, with the same result.
struct MatrixJob {
  std::string pi_name;    // empty: not in model.pi
  std::string gguf_name;  // empty: not in the GGUF
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t unit_rows = 1;
  std::function<void(int64_t unit, float* values)> fill;
};

absl::Status StreamMatrix(const MatrixJob& job, int threads, Outputs& outputs) {
  const auto cols = static_cast<size_t>(job.cols);
  absl::StatusOr<uint64_t> row_bytes = RowBytes(job.dtype, cols);
  if (!row_bytes.ok()) return row_bytes.status();
  const uint64_t unit_bytes = *row_bytes * static_cast<uint64_t>(job.unit_rows);
  const int64_t units = job.rows / job.unit_rows;
  const int64_t units_per_chunk =
      std::clamp<int64_t>(static_cast<int64_t>(kChunkBytes / unit_bytes), 1, units);
  std::vector<uint8_t> chunk(static_cast<size_t>(units_per_chunk * unit_bytes));
  for (int64_t first = 0; first < units; first += units_per_chunk) {
    const int64_t count = std::min(units_per_chunk, units - first);
    std::atomic<bool> encoded{true};
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> values(static_cast<size_t>(job.unit_rows) * cols);
#pragma omp for schedule(dynamic, 1)
      for (int64_t u = 0; u < count; ++u) {
        job.fill(first + u, values.data());
        for (int64_t r = 0; r < job.unit_rows; ++r) {
          uint8_t* out = chunk.data() + u * unit_bytes + static_cast<uint64_t>(r) * *row_bytes;
          if (!EncodeRow(values.data() + r * cols, cols, job.dtype, out).ok()) encoded = false;
        }
      }
    }
    if (!encoded) {
      return absl::InternalError(absl::StrCat("cannot encode tensor '", job.pi_name, job.gguf_name,
                                              "' as ", Sv(DTypeName(job.dtype))));
    }
    if (absl::Status s = outputs.Append(job.pi_name, job.gguf_name,
                                        {chunk.data(), static_cast<size_t>(count * unit_bytes)});
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Scales x[0, n) to Euclidean norm `norm`.
void ScaleToNorm(float* x, int64_t n, double norm) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const auto scale = static_cast<float>(sum > 0 ? norm / std::sqrt(sum) : 0);
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void Scale(float* x, int64_t n, double factor) {
  const auto f = static_cast<float>(factor);
  for (int64_t i = 0; i < n; ++i) x[i] *= f;
}

// N(0, 1) deviates for row `row` of the stream family `name`.
void NormalRow(uint64_t seed, const std::string& name, int64_t row, float* out, int64_t n) {
  RandomStream(StreamKey(seed, name, static_cast<uint64_t>(row)))
      .FillNormal(out, static_cast<size_t>(n));
}

std::string GgufName(const std::string& pi_name) { return absl::StrCat(pi_name, ".weight"); }

uint32_t GgufFileType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ8_0:
      return 7;
    case DType::kBF16:
      return 32;
    default:
      return 0;
  }
}

// Everything fixed before the first byte is written.
struct Layout {
  ModelConfig config;
  Vocabulary vocabulary;
  std::vector<TensorSpec> pi_tensors;
  std::vector<TensorSpec> gguf_tensors;
};

Layout PlanLayout(const SynthOptions& options, Vocabulary vocabulary) {
  const ShapeSpec& s = options.shape;
  Layout layout;
  ModelConfig& c = layout.config;
  c = ShapeModelConfig(s);
  switch (*options.ffn_act) {
    case SynthActivation::kRelu:
      c.ffn_act = {ActivationKind::kRelu, 0.0f};
      break;
    case SynthActivation::kGeluErf:
      c.ffn_act = {ActivationKind::kGeluErf, 0.0f};
      break;
    case SynthActivation::kFatRelu:
      c.ffn_act = {ActivationKind::kFatRelu, static_cast<float>(kFatReluThreshold)};
      break;
  }
  layout.vocabulary = std::move(vocabulary);

  const auto d = static_cast<uint64_t>(s.dim), ff = static_cast<uint64_t>(s.n_ff);
  const auto q_dim = static_cast<uint64_t>(c.q_dim()), kv_dim = static_cast<uint64_t>(c.kv_dim());
  const DType w = options.dtype;
  // As pi-convert stores a q4_0 model: with --q4_0x16, the matrices read by dot products as
  // q4_0x16 in model.pi (format/README.md); the GGUF always in llama.cpp's q4_0.
  auto add = [&](const std::string& name, DType dtype, std::vector<uint64_t> shape,
                 bool dot_products = false) {
    const DType pi_dtype =
        dtype == DType::kQ4_0 && dot_products && options.q4_0x16 ? DType::kQ4_0x16 : dtype;
    layout.pi_tensors.push_back({name, pi_dtype, shape});
    layout.gguf_tensors.push_back({GgufName(name), dtype, std::move(shape)});
  };
  // A LayerNorm's bias beside its weight; a projection's bias (opt), all f32.
  auto add_norm = [&](const std::string& name, const std::string& bias_name) {
    add(name, DType::kF32, {d});
    if (c.norm == NormKind::kLayer) add(bias_name, DType::kF32, {d});
  };
  auto add_bias = [&](const std::string& name, uint64_t count) {
    if (c.biases) add(name, DType::kF32, {count});
  };
  add(tn::kTokenEmbedding, w, {static_cast<uint64_t>(s.vocab_size), d});
  if (c.positions == PositionKind::kLearned) {
    add(tn::kPositionEmbedding, w, {static_cast<uint64_t>(c.position_rows()), d});
  }
  for (int l = 0; l < s.n_layers; ++l) {
    add_norm(tn::AttnNorm(l), tn::AttnNormBias(l));
    add(tn::AttnQ(l), w, {q_dim, d}, true);
    add(tn::AttnK(l), w, {kv_dim, d}, true);
    add(tn::AttnV(l), w, {kv_dim, d}, true);
    add(tn::AttnOutput(l), w, {d, q_dim}, true);
    add_bias(tn::AttnQBias(l), q_dim);
    add_bias(tn::AttnKBias(l), kv_dim);
    add_bias(tn::AttnVBias(l), kv_dim);
    add_bias(tn::AttnOutputBias(l), d);
    add_norm(tn::FfnNorm(l), tn::FfnNormBias(l));
    add(tn::FfnGate(l), w, {ff, d}, true);
    if (c.ffn_gated) add(tn::FfnUp(l), w, {ff, d}, true);
    // model.pi stores down transposed, neuron-major; GGUF stores it [d, n_ff].
    layout.pi_tensors.push_back({tn::FfnDownT(l), w, {ff, d}});
    layout.gguf_tensors.push_back({GgufName(tn::Layer(l, "ffn_down")), w, {d, ff}});
    add_bias(tn::FfnGateBias(l), ff);
    add_bias(tn::FfnDownBias(l), d);
  }
  add_norm(tn::kOutputNorm, tn::kOutputNormBias);
  if (!c.tied_embeddings) add(tn::kOutput, w, {static_cast<uint64_t>(s.vocab_size), d}, true);
  layout.pi_tensors.push_back(
      {kPlantedProbabilityTensor, DType::kF32, {static_cast<uint64_t>(s.n_layers), ff}});
  return layout;
}

GgufMetadata GgufMetadataFor(const SynthOptions& options, const Layout& layout) {
  const ModelConfig& c = layout.config;
  const Vocabulary& v = layout.vocabulary;
  GgufMetadata m = LlamaGgufMetadata(c, v);
  m.SetString("general.description",
              absl::StrCat("pinfer pi-synth synthetic model: random weights with planted "
                           "activation locality, for speed benchmarks only. model.pi runs the FFN "
                           "with ",
                           c.ffn_act.ToString(),
                           "; llama.cpp computes SiLU on the same "
                           "weights."));
  m.SetUint32("general.file_type", GgufFileType(options.dtype));
  m.SetUint32("general.quantization_version", 2);
  m.SetBool("pinfer.synthetic", true);
  m.SetUint64("pinfer.synth.seed", options.seed);
  m.SetString("pinfer.synth.locality", options.locality.ToString());
  m.SetString("pinfer.synth.ffn_act", c.ffn_act.ToString());
  return m;
}

uint64_t TensorDataBytes(const std::vector<TensorSpec>& tensors) {
  uint64_t total = 0;
  for (const TensorSpec& t : tensors) total += TensorBytes(t.dtype, t.shape).value_or(0);
  return total;
}

// Fails when the outputs cannot fit in the free space of their file systems.
absl::Status CheckFreeSpace(const std::vector<std::pair<std::string, uint64_t>>& outputs) {
  struct Need {
    dev_t device;
    std::string dir;
    uint64_t bytes;
  };
  std::vector<Need> needs;
  for (const auto& [path, bytes] : outputs) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    const std::string dir = parent.empty() ? std::string(".") : parent.string();
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) continue;  // AtomicFile reports the missing directory
    auto it = std::find_if(needs.begin(), needs.end(),
                           [&](const Need& n) { return n.device == st.st_dev; });
    if (it == needs.end()) {
      needs.push_back({st.st_dev, dir, bytes});
    } else {
      it->bytes += bytes;
    }
  }
  for (const Need& need : needs) {
    std::error_code ec;
    const std::filesystem::space_info space = std::filesystem::space(need.dir, ec);
    if (!ec && space.available < need.bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(need.dir, ": not enough free space: the output needs ",
                       FormatBytes(need.bytes), ", ", FormatBytes(space.available), " are free"));
    }
  }
  return absl::OkStatus();
}

// Generates every tensor, layer by layer.
class Generator {
 public:
  Generator(const SynthOptions& options, const ModelConfig& config, const FiringLaw& law,
            Outputs& outputs, int threads)
      : o_(options),
        s_(options.shape),
        c_(config),
        law_(law),
        outputs_(outputs),
        threads_(threads) {}

  absl::Status Run(std::vector<double>& content_energy) {
    const int64_t d = s_.dim;
    const int64_t content = d - kBiasDims;
    PI_RETURN_IF_ERROR(Embeddings());
    // e: energy per content dimension of the residual stream, as modelled (README.md). Attention
    // adds between 0 and κ_a/(2L) per layer, depending on the context; the model neglects it, so
    // the attention and the FFN of a layer are calibrated for the same e (which a parallel layer,
    // Falcon's, does anyway).
    double e = kEmbeddingEnergy;
    for (int l = 0; l < s_.n_layers; ++l) {
      // A LayerNorm model with fc1 biases (opt) plants the thresholds there, one without (falcon)
      // in the bias channel its norms make.
      const InputGeometry input =
          layer_norm() ? LayerNormInput(d, /*bias_channel=*/!c_.biases) : NormalizedInput(d, e);
      content_energy.push_back(e);
      PI_RETURN_IF_ERROR(Attention(l, input));
      const FfnPlan plan =
          PlanFfn(law_, o_.seed, l, d, s_.n_layers, input, *o_.ffn_act, c_.ffn_gated);
      std::vector<double> down_row_energy;
      PI_RETURN_IF_ERROR(Ffn(l, input, plan, down_row_energy));
      double added = 0;
      for (int64_t i = 0; i < s_.n_ff; ++i) {
        added +=
            down_row_energy[static_cast<size_t>(i)] * plan.output_moment[static_cast<size_t>(i)];
      }
      e += added / static_cast<double>(content);
      std::vector<float> probability(plan.probability.begin(), plan.probability.end());
      PI_RETURN_IF_ERROR(Vector(kPlantedProbabilityTensor, probability, /*in_gguf=*/false));
    }
    if (c_.tied_embeddings) return TiedOutputNorm();
    PI_RETURN_IF_ERROR(Norm(tn::kOutputNorm, tn::kOutputNormBias, /*bias_channel=*/0));
    return Dense(tn::kOutput, s_.vocab_size, d, 1.0 / std::sqrt(static_cast<double>(d)), 0);
  }

 private:
  bool layer_norm() const { return c_.norm == NormKind::kLayer; }

  absl::Status Stream(MatrixJob job) {
    if (job.gguf_name.empty() && !job.pi_name.empty()) job.gguf_name = GgufName(job.pi_name);
    return StreamMatrix(job, threads_, outputs_);
  }

  // An f32 vector (norms, biases, the planted probabilities).
  absl::Status Vector(const std::string& name, const std::vector<float>& values,
                      bool in_gguf = true) {
    return outputs_.Append(
        name, in_gguf ? GgufName(name) : std::string(),
        {reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float)});
  }

  // A norm's weight, and a LayerNorm's bias beside it. RMSNorm (llama): ones. LayerNorm: ones and
  // zeros, except where it carries the bias channel (falcon's attn_norm and ffn_norm, README.md):
  // weight 0 and bias x_b/sqrt(B) on the bias dimensions, so that every token reads exactly x_b
  // there, whatever its residual.
  absl::Status Norm(const std::string& name, const std::string& bias_name, double bias_channel) {
    std::vector<float> weight(static_cast<size_t>(s_.dim), 1.0f);
    if (!layer_norm()) return Vector(name, weight);
    std::vector<float> bias(static_cast<size_t>(s_.dim), 0.0f);
    if (bias_channel > 0) {
      std::fill(weight.begin(), weight.begin() + kBiasDims, 0.0f);
      std::fill(bias.begin(), bias.begin() + kBiasDims,
                static_cast<float>(bias_channel / std::sqrt(static_cast<double>(kBiasDims))));
    }
    PI_RETURN_IF_ERROR(Vector(name, weight));
    return Vector(bias_name, bias);
  }

  // The final norm of a model whose classifier is token_embd (opt, falcon). With unit weights the
  // logit of token v would be emb_v·x, and x holds the current token's own embedding: every model
  // would repeat its input token. Weights of random sign ±1/sqrt((d - B)·e_tok) on the content
  // dimensions (zero on the bias dimensions) make that self-match a sum of random signs, and
  // logits of standard deviation about 1, as the separate classifier's N(0, 1/d) gives llama.
  absl::Status TiedOutputNorm() {
    const int64_t d = s_.dim, content = d - kBiasDims;
    const double token_energy = c_.positions == PositionKind::kLearned
                                    ? kEmbeddingEnergy - kPositionEnergy
                                    : kEmbeddingEnergy;
    const auto scale =
        static_cast<float>(1.0 / std::sqrt(static_cast<double>(content) * token_energy));
    std::vector<float> weight(static_cast<size_t>(d), 0.0f);
    RandomStream signs(StreamKey(o_.seed, tn::kOutputNorm, 0));
    for (int64_t j = kBiasDims; j < d; ++j) {
      weight[static_cast<size_t>(j)] = (signs.NextU64() >> 63) != 0 ? scale : -scale;
    }
    PI_RETURN_IF_ERROR(Vector(tn::kOutputNorm, weight));
    if (!layer_norm()) return absl::OkStatus();
    return Vector(tn::kOutputNormBias, std::vector<float>(static_cast<size_t>(d), 0.0f));
  }

  // A projection's bias (opt): N(0, std²) per entry, or zeros for std = 0.
  absl::Status Bias(const std::string& name, int64_t count, double std) {
    if (!c_.biases) return absl::OkStatus();
    std::vector<float> bias(static_cast<size_t>(count), 0.0f);
    if (std > 0) {
      NormalRow(o_.seed, name, 0, bias.data(), count);
      Scale(bias.data(), count, std);
    }
    return Vector(name, bias);
  }

  // Token embeddings: the bias channel c/sqrt(B) in each of the first B dimensions (llama; the
  // LayerNorm architectures keep them zero: their norms make the channel), then a random content
  // vector of energy e_0 per dimension, of which learned positions (opt) take kPositionEnergy:
  // position_embd's rows hold it, on the content dimensions only.
  absl::Status Embeddings() {
    const int64_t d = s_.dim, content = d - kBiasDims;
    const auto bias =
        layer_norm()
            ? 0.0f
            : static_cast<float>(std::sqrt(kBiasEnergy * static_cast<double>(content) / kBiasDims));
    const bool learned = c_.positions == PositionKind::kLearned;
    const double token_energy = learned ? kEmbeddingEnergy - kPositionEnergy : kEmbeddingEnergy;
    const double norm = std::sqrt(token_energy * static_cast<double>(content));
    const std::string name = tn::kTokenEmbedding;
    PI_RETURN_IF_ERROR(
        Stream({name, "", o_.dtype, s_.vocab_size, d, 1, [=, this](int64_t row, float* v) {
                  std::fill(v, v + kBiasDims, bias);
                  NormalRow(o_.seed, name, row, v + kBiasDims, content);
                  ScaleToNorm(v + kBiasDims, content, norm);
                }}));
    if (!learned) return absl::OkStatus();
    const std::string positions = tn::kPositionEmbedding;
    const double position_norm = std::sqrt(kPositionEnergy * static_cast<double>(content));
    return Stream(
        {positions, "", o_.dtype, c_.position_rows(), d, 1, [=, this](int64_t row, float* v) {
           std::fill(v, v + kBiasDims, 0.0f);
           NormalRow(o_.seed, positions, row, v + kBiasDims, content);
           ScaleToNorm(v + kBiasDims, content, position_norm);
         }});
  }

  // Rows of N(0, std²) values; the first `zero_prefix` columns zero.
  absl::Status Dense(const std::string& name, int64_t rows, int64_t cols, double std,
                     int64_t zero_prefix) {
    return Stream({name, "", o_.dtype, rows, cols, 1, [=, this](int64_t row, float* v) {
                     std::fill(v, v + zero_prefix, 0.0f);
                     NormalRow(o_.seed, name, row, v + zero_prefix, cols - zero_prefix);
                     Scale(v + zero_prefix, cols - zero_prefix, std);
                   }});
  }

  absl::Status Attention(int l, const InputGeometry& input) {
    const int64_t d = s_.dim;
    const int64_t q_dim = s_.n_heads * s_.head_dim(), kv_dim = s_.n_kv_heads * s_.head_dim();
    PI_RETURN_IF_ERROR(Norm(tn::AttnNorm(l), tn::AttnNormBias(l), input.bias_projection));
    // q and k of unit variance (attention scores of standard deviation ~1), v of σ_v; none reads
    // the bias channel.
    const double unit = 1.0 / input.content_norm;
    PI_RETURN_IF_ERROR(Dense(tn::AttnQ(l), q_dim, d, unit, kBiasDims));
    PI_RETURN_IF_ERROR(Dense(tn::AttnK(l), kv_dim, d, unit, kBiasDims));
    PI_RETURN_IF_ERROR(Dense(tn::AttnV(l), kv_dim, d, kValueScale * unit, kBiasDims));
    // The output adds at most κ_a/(2L) per content dimension, and nothing to the bias channel.
    const double output_std = std::sqrt(kAttentionGain / (2.0 * static_cast<double>(s_.n_layers) *
                                                          static_cast<double>(q_dim))) /
                              kValueScale;
    const std::string name = tn::AttnOutput(l);
    PI_RETURN_IF_ERROR(Stream({name, "", o_.dtype, d, q_dim, 1, [=, this](int64_t row, float* v) {
                                 if (row < kBiasDims) {
                                   std::fill(v, v + q_dim, 0.0f);
                                   return;
                                 }
                                 NormalRow(o_.seed, name, row, v, q_dim);
                                 Scale(v, q_dim, output_std);
                               }}));
    // Biases (opt): q and k get small random ones (k's cancels in the softmax, q's tilts the
    // scores); v's and the output's stay zero: they would add one vector to every token's residual,
    // and a shared vector in the FFN input moves each neuron's threshold (README.md).
    PI_RETURN_IF_ERROR(Bias(tn::AttnQBias(l), q_dim, kProjectionBiasScale));
    PI_RETURN_IF_ERROR(Bias(tn::AttnKBias(l), kv_dim, kProjectionBiasScale));
    PI_RETURN_IF_ERROR(Bias(tn::AttnVBias(l), kv_dim, 0));
    return Bias(tn::AttnOutputBias(l), d, 0);
  }

  // K orthonormal directions [K, n] of the content space (Gram-Schmidt over seeded normal
  // vectors), which the gate rows of `name` combine; empty for K = 0.
  std::vector<double> LatentDirections(const std::string& name, int64_t k_latent, int64_t n) const {
    std::vector<double> dirs(static_cast<size_t>(k_latent * n));
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t k = 0; k < k_latent; ++k) {
      double* v = dirs.data() + k * n;
      NormalRow(o_.seed, name + ".latent_direction", k, row.data(), n);
      std::copy(row.begin(), row.end(), v);
      for (int pass = 0; pass < 2; ++pass) {  // twice: orthogonal to rounding
        for (int64_t j = 0; j < k; ++j) {
          const double* u = dirs.data() + j * n;
          double dot = 0;
          for (int64_t i = 0; i < n; ++i) dot += u[i] * v[i];
          for (int64_t i = 0; i < n; ++i) v[i] -= dot * u[i];
        }
      }
      double norm = 0;
      for (int64_t i = 0; i < n; ++i) norm += v[i] * v[i];
      norm = std::sqrt(norm);
      for (int64_t i = 0; i < n; ++i) v[i] /= norm;
    }
    return dirs;
  }

  absl::Status Ffn(int l, const InputGeometry& input, const FfnPlan& plan,
                   std::vector<double>& down_row_energy) {
    const int64_t d = s_.dim, ff = s_.n_ff, content = d - kBiasDims;
    PI_RETURN_IF_ERROR(Norm(tn::FfnNorm(l), tn::FfnNormBias(l), input.bias_projection));
    // Gate row i (fc1's for a gate-less FFN): β_i/sqrt(B) on the bias channel (projection
    // β_i·x_b; zero without a channel, where fc1's bias holds μ_i), and a content part of norm
    // sqrt(d - B)/r_x (projection N(0, 1)): a random direction of its own, or (latent=K) the
    // combination V·a_i of the layer's K orthonormal latent directions by a random unit code a_i,
    // mixed with a share η of its own direction (README.md: "Learnable locality").
    const std::string gate = tn::FfnGate(l);
    const double bias_share = 1.0 / std::sqrt(static_cast<double>(kBiasDims));
    const int64_t k_latent = o_.locality.latent;
    const std::vector<double> latent = LatentDirections(gate, k_latent, content);
    const double own_share = std::sqrt(o_.locality.noise);
    const double latent_share = std::sqrt(1.0 - o_.locality.noise);
    PI_RETURN_IF_ERROR(Stream(
        {gate, "", o_.dtype, ff, d, 1, [&, gate](int64_t row, float* v) {
           std::fill(v, v + kBiasDims,
                     static_cast<float>(plan.bias_weight[static_cast<size_t>(row)] * bias_share));
           float* c = v + kBiasDims;
           NormalRow(o_.seed, gate, row, c, content);
           if (k_latent > 0) {
             ScaleToNorm(c, content, own_share);
             std::vector<float> code(static_cast<size_t>(k_latent));
             NormalRow(o_.seed, gate + ".latent_code", row, code.data(), k_latent);
             ScaleToNorm(code.data(), k_latent, latent_share);
             for (int64_t k = 0; k < k_latent; ++k) {
               const double* dir = latent.data() + k * content;
               for (int64_t j = 0; j < content; ++j) {
                 c[j] += static_cast<float>(code[static_cast<size_t>(k)] * dir[j]);
               }
             }
           }
           ScaleToNorm(c, content, plan.gate_content_norm);
         }}));
    if (c_.ffn_gated) PI_RETURN_IF_ERROR(Dense(tn::FfnUp(l), ff, d, plan.up_std, kBiasDims));

    DownTileSource tiles{o_.seed,   tn::Layer(l, "ffn_down"), o_.dtype, plan.down_std,
                         d / kTile, kBiasDims / kTile};
    down_row_energy.assign(static_cast<size_t>(ff), 0.0);
    // model.pi: ffn_down_t, 32 neurons (one tile row) per unit.
    if (absl::Status st = StreamMatrix(
            {tn::FfnDownT(l), "", o_.dtype, ff, d, kTile,
             [&](int64_t band, float* v) {
               float tile[kTile * kTile];
               for (int64_t j = 0; j < d / kTile; ++j) {
                 FillDownTile(tiles, band, j, tile);
                 for (int64_t r = 0; r < kTile; ++r) {
                   std::copy(tile + r * kTile, tile + (r + 1) * kTile, v + r * d + j * kTile);
                 }
               }
               for (int64_t r = 0; r < kTile; ++r) {
                 double sum = 0;
                 for (int64_t c = 0; c < d; ++c)
                   sum += static_cast<double>(v[r * d + c]) * v[r * d + c];
                 down_row_energy[static_cast<size_t>(band * kTile + r)] = sum;
               }
             }},
            threads_, outputs_);
        !st.ok()) {
      return st;
    }
    // fc1's bias (opt) is the gate's mean μ_i, exact in f32; fc2's stays zero (it would add one
    // vector to every token's residual).
    if (c_.biases) {
      PI_RETURN_IF_ERROR(Vector(tn::FfnGateBias(l), plan.gate_mean));
      PI_RETURN_IF_ERROR(Bias(tn::FfnDownBias(l), d, 0));
    }
    if (!outputs_.has_gguf()) return absl::OkStatus();
    // GGUF: ffn_down [d, n_ff], 32 output dimensions (one tile column) per unit; same tiles.
    return StreamMatrix({"", GgufName(tn::Layer(l, "ffn_down")), o_.dtype, d, ff, kTile,
                         [&](int64_t band, float* v) {
                           float tile[kTile * kTile];
                           for (int64_t i = 0; i < ff / kTile; ++i) {
                             FillDownTile(tiles, i, band, tile);
                             for (int64_t r = 0; r < kTile; ++r) {
                               for (int64_t c = 0; c < kTile; ++c) {
                                 v[c * ff + i * kTile + r] = tile[r * kTile + c];
                               }
                             }
                           }
                         }},
                        threads_, outputs_);
  }

  const SynthOptions& o_;
  const ShapeSpec& s_;
  const ModelConfig& c_;
  const FiringLaw& law_;
  Outputs& outputs_;
  int threads_;
};

}  // namespace

SynthActivation ArchitectureActivation(const std::string& architecture) {
  return architecture == "llama" ? SynthActivation::kFatRelu : SynthActivation::kRelu;
}

absl::StatusOr<SynthReport> WriteSyntheticModel(const SynthOptions& requested) {
  const auto start = std::chrono::steady_clock::now();
  SynthOptions options = requested;
  if (!options.ffn_act) options.ffn_act = ArchitectureActivation(options.shape.architecture);
  if (*options.ffn_act == SynthActivation::kGeluErf && options.shape.architecture == "llama") {
    return absl::InvalidArgumentError(
        "--ffn-act gelu is for the gate-less FFNs of opt and falcon (pinfer computes gelu_erf "
        "there only), not llama");
  }
  if (!options.gguf_path.empty() && options.shape.architecture != "llama") {
    return absl::InvalidArgumentError(
        absl::StrCat("--gguf ", options.gguf_path,
                     ": pi-synth writes GGUF files of the llama architecture "
                     "only, not '",
                     options.shape.architecture, "' (write model.pi alone)"));
  }
  switch (options.dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("--dtype ", Sv(DTypeName(options.dtype)),
                                                     " is not a weight dtype (f32, f16, bf16, q8_0 "
                                                     "or q4_0)"));
  }
  if (options.output_path.empty()) return absl::InvalidArgumentError("no output path (-o)");
  {
    std::vector<OutputFile> outputs = {{"-o", options.output_path, ArtifactKind::kModel}};
    if (!options.gguf_path.empty()) outputs.push_back({"--gguf", options.gguf_path, std::nullopt});
    const InputFile inputs[] = {{"the tokenizer", options.tokenizer_path}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }
  absl::StatusOr<FiringLaw> law = FiringLaw::Solve(options.locality, options.shape.n_ff);
  if (!law.ok()) return law.status();
  if (options.locality.latent > options.shape.dim - kBiasDims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--locality '", options.locality.ToString(), "': latent=", options.locality.latent,
        " exceeds the ", options.shape.dim - kBiasDims, " content dimensions of dim ",
        options.shape.dim, " (dim - ", kBiasDims, " bias dimensions)"));
  }
  absl::StatusOr<Vocabulary> vocabulary = SyntheticVocabulary(
      options.tokenizer_path.empty() ? DefaultTokenizerPath() : options.tokenizer_path,
      options.shape.vocab_size);
  if (!vocabulary.ok()) return vocabulary.status();

  Layout layout = PlanLayout(options, *std::move(vocabulary));
  if (absl::Status s = layout.config.Validate(); !s.ok()) return s;
  Metadata metadata;
  layout.config.ToMetadata(metadata);
  layout.vocabulary.ToMetadata(metadata);
  metadata.SetInt("synth.version", 1);
  metadata.SetString("synth.shape", options.shape.ToString());
  metadata.SetInt("synth.seed", static_cast<int64_t>(options.seed));
  metadata.SetString("synth.locality", options.locality.ToString());
  metadata.SetFloat("synth.hot_probability", law->hot_probability());
  metadata.SetInt("synth.hot_neurons", law->HotCount());
  metadata.SetInt("synth.bias_dims", kBiasDims);
  metadata.SetString(keys::kProvenanceTool, "pi-synth");
  metadata.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  metadata.SetString(keys::kProvenanceArguments, options.command_line);

  // Disk space first, from the tensor bytes (headers and padding are comparatively nothing), so
  // that a model that cannot fit fails before any file is created.
  std::vector<std::pair<std::string, uint64_t>> sizes = {
      {options.output_path, TensorDataBytes(layout.pi_tensors)}};
  if (!options.gguf_path.empty()) {
    sizes.emplace_back(options.gguf_path, TensorDataBytes(layout.gguf_tensors));
  }
  if (absl::Status s = CheckFreeSpace(sizes); !s.ok()) return s;

  absl::StatusOr<std::unique_ptr<PiWriter>> pi = PiWriter::Create(
      options.output_path, ArtifactKind::kModel, std::move(metadata), layout.pi_tensors);
  if (!pi.ok()) return pi.status();
  std::unique_ptr<GgufWriter> gguf;
  if (!options.gguf_path.empty()) {
    absl::StatusOr<std::unique_ptr<GgufWriter>> writer = GgufWriter::Create(
        options.gguf_path, GgufMetadataFor(options, layout), layout.gguf_tensors);
    if (!writer.ok()) return writer.status();
    gguf = *std::move(writer);
  }

  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  ProgressBar::SetEnabled(options.progress);
  ProgressBar progress("generating", (*pi)->total_bytes() + (gguf ? gguf->total_bytes() : 0), "B");
  Outputs outputs(**pi, gguf.get(), progress, layout.pi_tensors);
  SynthReport report;
  Generator generator(options, layout.config, *law, outputs, threads);
  if (absl::Status s = generator.Run(report.content_energy); !s.ok()) return s;

  if (absl::Status s = (*pi)->Commit(); !s.ok()) return s;
  if (gguf) {
    if (absl::Status s = gguf->Commit(); !s.ok()) {
      std::error_code ignored;
      std::filesystem::remove(options.output_path, ignored);  // all or nothing
      return s;
    }
  }
  progress.Finish();

  report.pi_bytes = (*pi)->total_bytes();
  report.gguf_bytes = gguf ? gguf->total_bytes() : 0;
  report.parameters = options.shape.Parameters();
  report.hot_probability = law->hot_probability();
  report.hot_neurons = law->HotCount();
  report.threads = threads;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace pinfer::synth
