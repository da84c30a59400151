#include "bench/synth/shapes.h"

#include <array>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "format/strings.h"

namespace pinfer::synth {
namespace {

// Llama-2 (Touvron et al. 2023 and the released config.json files); OPT (Zhang et al. 2022,
// table 1, and facebook/opt-*'s config.json: hidden_size, ffn_dim, num_hidden_layers,
// num_attention_heads, vocab_size 50272, max_position_embeddings 2048, tied embeddings); Falcon
// (tiiuae/falcon-7b and -40b's config.json: hidden 4544 and 8192, 32 and 60 layers, 71 and 128
// query heads, 1 (multi-query) and 8 KV heads, vocab 65024, FFN 4x hidden, 2048 positions;
// transformers' FalconConfig ties the embeddings by default).
const std::array<ShapeSpec, 8> kNamedShapes = {{
    {"llama-7b", "llama", 4096, 11008, 32, 32, 32, 32000, 4096, false},
    {"llama-13b", "llama", 5120, 13824, 40, 40, 40, 32000, 4096, false},
    {"llama-70b", "llama", 8192, 28672, 80, 64, 8, 32000, 4096, false},
    {"opt-6.7b", "opt", 4096, 16384, 32, 32, 32, 50272, 2048, true},
    {"opt-66b", "opt", 9216, 36864, 64, 72, 72, 50272, 2048, true},
    {"opt-175b", "opt", 12288, 49152, 96, 96, 96, 50272, 2048, true},
    {"falcon-7b", "falcon", 4544, 18176, 32, 71, 1, 65024, 2048, true},
    {"falcon-40b", "falcon", 8192, 32768, 60, 128, 8, 65024, 2048, true},
}};

constexpr std::string_view kCustom = "custom:";
constexpr char kCustomGrammar[] = "custom:d=D,ff=F,layers=L,heads=H[,kv_heads=K][,vocab=V][,ctx=C]";

absl::Status ShapeError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("--shape '", Sv(text), "': ", Sv(reason)));
}

std::string NamedShapeList() {
  std::string names;
  for (const ShapeSpec& s : kNamedShapes) absl::StrAppend(&names, s.name, ", ");
  return names;
}

absl::Status Validate(std::string_view text, const ShapeSpec& s) {
  const struct {
    const char* key;
    int64_t value, min, max;
  } ranges[] = {{"d", s.dim, 64, 65536},
                {"ff", s.n_ff, 32, 1 << 20},
                {"layers", s.n_layers, 1, 1024},
                {"heads", s.n_heads, 1, 1024},
                {"kv_heads", s.n_kv_heads, 1, 1024},
                {"vocab", s.vocab_size, 259, 1 << 22},
                {"ctx", s.context_length, 1, 1 << 24}};
  for (const auto& r : ranges) {
    if (r.value < r.min || r.value > r.max) {
      return ShapeError(
          text, absl::StrCat(r.key, " must be in [", r.min, ", ", r.max, "], got ", r.value,
                             r.min == 259 ? " (3 special and 256 byte tokens at least)" : ""));
    }
  }
  if (s.dim % 32 != 0 || s.n_ff % 32 != 0) {
    return ShapeError(text, "d and ff must be multiples of 32 (one quantization block)");
  }
  if (s.dim % s.n_heads != 0 || s.head_dim() % 2 != 0) {
    return ShapeError(
        text, absl::StrCat("d ", s.dim, " must be heads ", s.n_heads, " times an even head size"));
  }
  if (s.n_heads % s.n_kv_heads != 0) {
    return ShapeError(
        text, absl::StrCat("heads ", s.n_heads, " must be a multiple of kv_heads ", s.n_kv_heads));
  }
  if (s.architecture == "opt" && s.n_kv_heads != s.n_heads) {
    return ShapeError(text, absl::StrCat("--arch opt has no grouped KV: kv_heads ", s.n_kv_heads,
                                         " must equal heads ", s.n_heads));
  }
  return absl::OkStatus();
}

}  // namespace

ModelConfig ShapeModelConfig(const ShapeSpec& s) {
  ModelConfig c;
  c.architecture = s.architecture;
  c.name = absl::StrCat("synthetic ", s.ToString());
  c.dim = s.dim;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.head_dim();
  c.n_ff = s.n_ff;
  c.vocab_size = s.vocab_size;
  c.context_length = s.context_length;
  c.rope_theta = 10000.0;
  c.rms_eps = 1e-5;
  c.tied_embeddings = s.tied_embeddings;
  c.synthetic = true;
  c.norm_act = {ActivationKind::kNone, 0.0f};
  if (s.architecture == "llama") {
    c.ffn_act = {ActivationKind::kFatRelu, 1.0f};
    return c;
  }
  c.ffn_act = {ActivationKind::kRelu, 0.0f};
  c.norm = NormKind::kLayer;
  c.ffn_gated = false;
  if (s.architecture == "opt") {
    c.positions = PositionKind::kLearned;
    c.position_offset = 2;  // OPTLearnedPositionalEmbedding's offset
    c.biases = true;
  } else {
    c.parallel_attn = true;
  }
  return c;
}

int64_t ShapeSpec::Parameters() const {
  const ModelConfig c = ShapeModelConfig(*this);
  const int64_t norm = c.norm == NormKind::kLayer ? 2 * dim : dim;  // weight (and bias)
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  int64_t per_layer =
      2 * q_dim * dim + 2 * kv_dim * dim + (c.ffn_gated ? 3 : 2) * n_ff * dim + 2 * norm;
  if (c.biases) per_layer += q_dim + 2 * kv_dim + dim + n_ff + dim;
  int64_t total = (tied_embeddings ? 1 : 2) * vocab_size * dim + n_layers * per_layer + norm;
  if (c.positions == PositionKind::kLearned) total += c.position_rows() * dim;
  return total;
}

std::string ShapeSpec::ToString() const {
  if (name != "custom") return name;
  return absl::StrFormat("custom:d=%d,ff=%d,layers=%d,heads=%d,kv_heads=%d,vocab=%d,ctx=%d", dim,
                         n_ff, n_layers, n_heads, n_kv_heads, vocab_size, context_length);
}

std::string NamedShapesHelp() {
  std::string help;
  for (const ShapeSpec& s : kNamedShapes) {
    absl::StrAppendFormat(
        &help, "  %-10s %-6s d=%d ff=%d layers=%d heads=%d kv_heads=%d vocab=%d\n", s.name,
        s.architecture, s.dim, s.n_ff, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size);
  }
  absl::StrAppend(&help, "  ", kCustomGrammar, "\n");
  return help;
}

absl::StatusOr<ShapeSpec> ParseShape(std::string_view text, std::string_view arch) {
  if (!arch.empty() && arch != "llama" && arch != "opt" && arch != "falcon") {
    return absl::InvalidArgumentError(
        absl::StrCat("--arch '", Sv(arch), "': expected llama, opt or falcon"));
  }
  // Embeddings per architecture where the shape does not say: OPT and Falcon tie them.
  auto take_arch = [&](ShapeSpec& s) {
    if (arch.empty() || arch == s.architecture) return;
    s.architecture = std::string(arch);
    s.tied_embeddings = arch != "llama";
  };
  for (ShapeSpec s : kNamedShapes) {
    if (text != s.name) continue;
    take_arch(s);
    if (absl::Status status = Validate(text, s); !status.ok()) return status;
    return s;
  }
  if (!text.starts_with(kCustom)) {
    return ShapeError(text, absl::StrCat("unknown shape (expected ", NamedShapeList(), "or ",
                                         kCustomGrammar, ")"));
  }
  ShapeSpec s;
  s.name = "custom";
  s.n_kv_heads = -1;
  s.vocab_size = 32000;
  s.context_length = 4096;
  const struct {
    const char* key;
    int64_t* value;
    bool required;
  } fields[] = {{"d", &s.dim, true},
                {"ff", &s.n_ff, true},
                {"layers", &s.n_layers, true},
                {"heads", &s.n_heads, true},
                {"kv_heads", &s.n_kv_heads, false},
                {"vocab", &s.vocab_size, false},
                {"ctx", &s.context_length, false}};
  bool seen[std::size(fields)] = {};
  for (absl::string_view item : absl::StrSplit(Sv(text.substr(kCustom.size())), ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    size_t i = 0;
    while (i < std::size(fields) && kv.first != fields[i].key) ++i;
    if (i == std::size(fields)) {
      return ShapeError(
          text, absl::StrCat("unknown key '", kv.first, "' (expected ", kCustomGrammar, ")"));
    }
    if (seen[i]) return ShapeError(text, absl::StrCat(fields[i].key, " is given twice"));
    seen[i] = true;
    if (!absl::SimpleAtoi(kv.second, fields[i].value)) {
      return ShapeError(text,
                        absl::StrCat(fields[i].key, " needs an integer, got '", kv.second, "'"));
    }
  }
  for (size_t i = 0; i < std::size(fields); ++i) {
    if (fields[i].required && !seen[i]) {
      return ShapeError(text,
                        absl::StrCat(fields[i].key, " is missing (expected ", kCustomGrammar, ")"));
    }
  }
  if (s.n_kv_heads == -1) s.n_kv_heads = s.n_heads;
  take_arch(s);
  if (absl::Status status = Validate(text, s); !status.ok()) return status;
  return s;
}

}  // namespace pinfer::synth
