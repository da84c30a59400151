#include "tools/convert/hf_config.h"

#include <cmath>
#include <initializer_list>
#include <iterator>
#include <numbers>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/convert/json_fields.h"

namespace pinfer {
namespace {

// What a rope_scaling value is, in a few words: its type when it names one. Never the whole value:
// nlohmann's dump() recurses once per nesting level, and a config.json of 100000 nested arrays
// would overflow the stack.
std::string DescribeRopeScaling(const nlohmann::json& scaling) {
  if (scaling.is_object()) {
    for (const char* key : {"rope_type", "type"}) {
      const auto it = scaling.find(key);
      if (it != scaling.end() && it->is_string() && it->get_ref<const std::string&>().size() < 64) {
        return absl::StrCat("type '", it->get_ref<const std::string&>(), "'");
      }
    }
    return "an object";
  }
  return absl::StrCat("a JSON ", scaling.type_name());
}

// rope_scaling (transformers' rope_type "linear" or "llama3"; "default" is none) as the per-pair
// divisors of RoPE's frequencies (ModelConfig::rope_freq_factors), computed as llama.cpp's
// convert_hf_to_gguf.py computes its rope_freqs tensor and transformers its inverse frequencies:
// pairs of wavelength 2π/freq below original_max_position_embeddings / high_freq_factor keep their
// frequency, those above original / low_freq_factor are divided by factor, and those between are
// interpolated by smooth = (original / wavelength - low) / (high - low):
// divisor 1 / ((1 - smooth) / factor + smooth). A missing or bad field is an error naming it.
absl::Status ParseRopeScaling(const nlohmann::json& scaling, const std::string& path,
                              ModelConfig& c, std::vector<std::string>& notes) {
  if (!scaling.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'rope_scaling' (", DescribeRopeScaling(scaling), ") is not supported"));
  }
  // Type errors name the object: "config.json: 'rope_scaling': 'factor' is not a number".
  JsonFields f(scaling, absl::StrCat(path, ": 'rope_scaling'"));
  absl::StatusOr<std::optional<std::string>> type = f.OptionalString("rope_type");
  if (!type.ok()) return type.status();
  if (!*type) {
    type = f.OptionalString("type");
    if (!type.ok()) return type.status();
  }
  if (!*type) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'rope_scaling' names no 'rope_type' (or 'type')"));
  }
  const std::string& kind = **type;
  if (kind == "default") return absl::OkStatus();
  if (kind != "linear" && kind != "llama3") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'rope_scaling' (", DescribeRopeScaling(scaling),
        ") is not supported (supported: llama3, linear)"));
  }
  // A positive finite number; `key` is named as rope_scaling.key.
  auto number = [&](const char* key) -> absl::StatusOr<double> {
    absl::StatusOr<std::optional<double>> v = f.OptionalNumber(key);
    if (!v.ok()) return v.status();
    if (!*v) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": 'rope_scaling' of type '", kind,
                                                     "' lacks '", key, "'"));
    }
    if (!(**v > 0) || !std::isfinite(**v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": 'rope_scaling.", key, "' must be positive, got ", **v));
    }
    return **v;
  };
  absl::StatusOr<double> factor = number("factor");
  if (!factor.ok()) return factor.status();
  const int64_t pairs = c.head_dim / 2;
  if (pairs > kMaxRopePairs) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'rope_scaling' with head_dim ",
                                                   c.head_dim, " (at most ", 2 * kMaxRopePairs,
                                                   ") is not supported"));
  }
  c.rope_freq_factors.assign(static_cast<size_t>(pairs), static_cast<float>(*factor));
  if (kind == "linear") {
    notes.push_back(absl::StrCat("rope_scaling linear, factor ", *factor));
    return absl::OkStatus();
  }
  absl::StatusOr<double> low = number("low_freq_factor");
  if (!low.ok()) return low.status();
  absl::StatusOr<double> high = number("high_freq_factor");
  if (!high.ok()) return high.status();
  absl::StatusOr<double> original = number("original_max_position_embeddings");
  if (!original.ok()) return original.status();
  if (!(*high > *low)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'rope_scaling.high_freq_factor' ", *high,
                     " must exceed 'low_freq_factor' ", *low));
  }
  const double low_wavelength = *original / *low, high_wavelength = *original / *high;
  for (int64_t i = 0; i < pairs; ++i) {
    const double freq =
        std::pow(c.rope_theta, -static_cast<double>(2 * i) / static_cast<double>(c.head_dim));
    const double wavelength = 2 * std::numbers::pi / freq;
    double divisor = *factor;
    if (wavelength < high_wavelength) {
      divisor = 1.0;
    } else if (wavelength <= low_wavelength) {
      const double smooth = (*original / wavelength - *low) / (*high - *low);
      divisor = 1.0 / ((1 - smooth) / *factor + smooth);
    }
    c.rope_freq_factors[static_cast<size_t>(i)] = static_cast<float>(divisor);
  }
  notes.push_back(absl::StrCat("rope_scaling llama3: factor ", *factor, ", low_freq_factor ",
                               *low, ", high_freq_factor ", *high,
                               ", original_max_position_embeddings ", *original));
  return absl::OkStatus();
}

constexpr const char* kArchitectures[] = {"LlamaForCausalLM",       "MistralForCausalLM",
                                          "SparseLlamaForCausalLM", "BambooForCausalLM",
                                          "OPTForCausalLM",         "FalconForCausalLM"};

bool IsMistralShaped(const std::string& arch) {
  return arch == "MistralForCausalLM" || arch == "BambooForCausalLM";
}

absl::Status Implausible(const std::string& path, const char* key, int64_t value) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": '", key, "' has an implausible value ", value));
}

// The special ids of config.json (some list several EOS ids: the first is the one generation
// stops on by default).
absl::Status ReadSpecialIds(const JsonFields& f, HfConfig& out) {
  for (auto [key, field] :
       {std::pair{"bos_token_id", &out.bos_token_id}, std::pair{"eos_token_id", &out.eos_token_id},
        std::pair{"pad_token_id", &out.pad_token_id}}) {
    const nlohmann::json* v = f.Find(key);
    if (v != nullptr && v->is_array() && !v->empty() && (*v)[0].is_number_integer()) {
      *field = (*v)[0].get<int64_t>();
      continue;
    }
    absl::StatusOr<std::optional<int64_t>> id = f.OptionalInt(key);
    if (!id.ok()) return id.status();
    *field = *id;
  }
  return absl::OkStatus();
}

// The first of `keys` present (Falcon's configs use both names), or none.
absl::StatusOr<std::optional<int64_t>> FirstInt(const JsonFields& f,
                                                std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    absl::StatusOr<std::optional<int64_t>> v = f.OptionalInt(key);
    if (!v.ok() || *v) return v;
  }
  return std::optional<int64_t>();
}

// One required positive count (hidden_size, layers, ...) per entry, read from the first of its
// keys present (Falcon's configs use two names for some), with one error naming the first key.
struct RequiredCount {
  std::initializer_list<const char*> keys;
  int64_t* field;
};
absl::Status ReadRequiredCounts(const JsonFields& f, std::initializer_list<RequiredCount> counts) {
  for (const RequiredCount& r : counts) {
    absl::StatusOr<std::optional<int64_t>> v = FirstInt(f, r.keys);
    if (!v.ok()) return v.status();
    if (!*v) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.file(), ": '", *r.keys.begin(), "' is missing"));
    }
    if (**v <= 0 || **v > kMaxModelCount) return Implausible(f.file(), *r.keys.begin(), **v);
    *r.field = **v;
  }
  return absl::OkStatus();
}

// OPTForCausalLM (facebook/opt-*), keys and defaults of transformers' OPTConfig: hidden_size,
// ffn_dim, num_hidden_layers, num_attention_heads, vocab_size, max_position_embeddings (2048),
// activation_function ("relu"), do_layer_norm_before (true), word_embed_proj_dim (hidden_size),
// enable_bias (true), layer_norm_elementwise_affine (true), _remove_final_layer_norm (false),
// tie_word_embeddings (true). LayerNorm's eps is torch's default 1e-5 (OPT has no key for it).
// Refused, one line naming the field: OPT-350m's post-norm (do_layer_norm_before false) and its
// project_in/project_out (word_embed_proj_dim != hidden_size), and the variants without biases or
// norm weights.
absl::StatusOr<HfConfig> ParseOptConfig(const JsonFields& f, HfConfig out) {
  const std::string& path = f.file();
  ModelConfig& c = out.config;
  c.architecture = "opt";
  c.norm = NormKind::kLayer;
  c.positions = PositionKind::kLearned;
  c.position_offset = 2;  // OPTLearnedPositionalEmbedding's offset
  c.ffn_gated = false;
  c.biases = true;
  c.rms_eps = 1e-5;
  c.rope_source_layout = "none";
  if (absl::Status s = ReadRequiredCounts(f, {{{"hidden_size"}, &c.dim},
                                               {{"ffn_dim"}, &c.n_ff},
                                               {{"num_hidden_layers"}, &c.n_layers},
                                               {{"num_attention_heads"}, &c.n_heads},
                                               {{"vocab_size"}, &c.vocab_size}});
      !s.ok()) {
    return s;
  }
  if (c.dim % c.n_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shapes: hidden_size ",
                                                   c.dim, " is not a multiple of ",
                                                   "num_attention_heads ", c.n_heads));
  }
  c.n_kv_heads = c.n_heads;
  c.head_dim = c.dim / c.n_heads;
  absl::StatusOr<std::optional<int64_t>> positions = f.OptionalInt("max_position_embeddings");
  if (!positions.ok()) return positions.status();
  c.context_length = positions->value_or(2048);
  if (c.context_length <= 0 || c.context_length > kMaxModelCount) {
    return Implausible(path, "max_position_embeddings", c.context_length);
  }
  absl::StatusOr<std::optional<int64_t>> proj = f.OptionalInt("word_embed_proj_dim");
  if (!proj.ok()) return proj.status();
  if (*proj && **proj != c.dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'word_embed_proj_dim' ", **proj, " != hidden_size ", c.dim,
                     " (OPT-350m's project_in/project_out) is not supported"));
  }
  const struct {
    const char* key;
    bool fallback;
    bool needed;
    const char* what;
  } flags[] = {{"do_layer_norm_before", true, true, "OPT-350m's post-norm layers"},
               {"enable_bias", true, true, "projections without biases"},
               {"layer_norm_elementwise_affine", true, true, "LayerNorms without weights"},
               {"_remove_final_layer_norm", false, false, "no final LayerNorm"}};
  for (const auto& flag : flags) {
    absl::StatusOr<std::optional<bool>> b = f.OptionalBool(flag.key);
    if (!b.ok()) return b.status();
    if (b->value_or(flag.fallback) != flag.needed) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", flag.key, "' ",
                                                     !flag.needed ? "true" : "false", " (",
                                                     flag.what, ") is not supported"));
    }
  }
  absl::StatusOr<std::optional<bool>> tied = f.OptionalBool("tie_word_embeddings");
  if (!tied.ok()) return tied.status();
  c.tied_embeddings = tied->value_or(true);
  absl::StatusOr<std::optional<std::string>> act = f.OptionalString("activation_function");
  if (!act.ok()) return act.status();
  const std::string activation = act->value_or("relu");
  if (activation != "relu") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": activation_function '", activation,
                                                   "' is not supported for OPT (relu only)"));
  }
  out.declared_ffn_act = {ActivationKind::kRelu, 0.0f};
  out.declared_by = "config.json activation_function 'relu'";
  c.ffn_act = out.declared_ffn_act;
  if (absl::Status s = ReadSpecialIds(f, out); !s.ok()) return s;
  return out;
}


// FalconForCausalLM (tiiuae/falcon-7b, -40b; ReluFalcon), keys and defaults of transformers'
// FalconConfig: hidden_size, num_hidden_layers (n_layer), num_attention_heads (n_head),
// num_kv_heads (n_head_kv; default num_attention_heads), multi_query (true),
// new_decoder_architecture (false), parallel_attn (true), bias (false), alibi (false),
// layer_norm_epsilon (1e-5), rope_theta (10000), max_position_embeddings (2048), ffn_hidden_size
// (4·hidden_size), activation ("gelu": exact; "relu": ReluFalcon), tie_word_embeddings (true).
// The key/value heads as Falcon's attention counts them: num_kv_heads with the new decoder
// architecture or without multi_query, else 1. Refused naming the field: sequential layers
// (parallel_attn false without the new decoder architecture), ALiBi, biases, rope_scaling.
absl::StatusOr<HfConfig> ParseFalconConfig(const JsonFields& f, HfConfig out) {
  const std::string& path = f.file();
  ModelConfig& c = out.config;
  c.architecture = "falcon";
  c.norm = NormKind::kLayer;
  c.positions = PositionKind::kRope;
  c.ffn_gated = false;
  c.biases = false;
  c.parallel_attn = true;
  c.rope_source_layout = "half";
  if (absl::Status s = ReadRequiredCounts(f, {{{"hidden_size"}, &c.dim},
                                               {{"num_hidden_layers", "n_layer"}, &c.n_layers},
                                               {{"num_attention_heads", "n_head"}, &c.n_heads},
                                               {{"vocab_size"}, &c.vocab_size}});
      !s.ok()) {
    return s;
  }
  if (c.dim % c.n_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shapes: hidden_size ",
                                                   c.dim, " is not a multiple of ",
                                                   "num_attention_heads ", c.n_heads));
  }
  c.head_dim = c.dim / c.n_heads;
  const struct {
    const char* key;
    bool fallback;
  } flags[] = {{"multi_query", true},
               {"new_decoder_architecture", false},
               {"parallel_attn", true},
               {"bias", false},
               {"alibi", false}};
  bool values[std::size(flags)];
  for (size_t i = 0; i < std::size(flags); ++i) {
    absl::StatusOr<std::optional<bool>> b = f.OptionalBool(flags[i].key);
    if (!b.ok()) return b.status();
    values[i] = b->value_or(flags[i].fallback);
  }
  const bool multi_query = values[0], new_decoder = values[1], parallel = values[2];
  if (!new_decoder && !parallel) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'parallel_attn' false (sequential Falcon layers) is not supported"));
  }
  if (values[3]) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'bias' true (biased Falcon projections) is not supported"));
  }
  if (values[4]) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'alibi' true is not supported"));
  }
  absl::StatusOr<std::optional<int64_t>> kv = FirstInt(f, {"num_kv_heads", "n_head_kv"});
  if (!kv.ok()) return kv.status();
  c.n_kv_heads = new_decoder || !multi_query ? kv->value_or(c.n_heads) : 1;
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": 'num_kv_heads' ", c.n_kv_heads,
                                                   " does not divide num_attention_heads ",
                                                   c.n_heads));
  }
  if (const nlohmann::json* scaling = f.Find("rope_scaling"); scaling && !scaling->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": 'rope_scaling' (", DescribeRopeScaling(*scaling), ") is not supported"));
  }
  absl::StatusOr<std::optional<int64_t>> ff = f.OptionalInt("ffn_hidden_size");
  if (!ff.ok()) return ff.status();
  c.n_ff = ff->value_or(4 * c.dim);
  absl::StatusOr<std::optional<int64_t>> positions = f.OptionalInt("max_position_embeddings");
  if (!positions.ok()) return positions.status();
  c.context_length = positions->value_or(2048);
  for (auto [key, value] : {std::pair{"ffn_hidden_size", c.n_ff},
                            std::pair{"max_position_embeddings", c.context_length}}) {
    if (value <= 0 || value > kMaxModelCount) return Implausible(path, key, value);
  }
  for (auto [key, fallback, field] : {std::tuple{"rope_theta", 10000.0, &c.rope_theta},
                                      std::tuple{"layer_norm_epsilon", 1e-5, &c.rms_eps}}) {
    absl::StatusOr<std::optional<double>> v = f.OptionalNumber(key);
    if (!v.ok()) return v.status();
    *field = v->value_or(fallback);
  }
  absl::StatusOr<std::optional<bool>> tied = f.OptionalBool("tie_word_embeddings");
  if (!tied.ok()) return tied.status();
  c.tied_embeddings = tied->value_or(true);
  absl::StatusOr<std::optional<std::string>> act = f.OptionalString("activation");
  if (!act.ok()) return act.status();
  const std::string activation = act->value_or("gelu");
  if (activation == "gelu") {
    out.declared_ffn_act = {ActivationKind::kGeluErf, 0.0f};
  } else if (activation == "relu") {
    out.declared_ffn_act = {ActivationKind::kRelu, 0.0f};
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, ": activation '", activation,
                                                   "' is not supported for Falcon (gelu or relu)"));
  }
  out.declared_by = absl::StrCat("config.json activation '", activation, "'");
  c.ffn_act = out.declared_ffn_act;
  if (absl::Status s = ReadSpecialIds(f, out); !s.ok()) return s;
  return out;
}

}  // namespace

absl::StatusOr<HfConfig> ParseHfConfig(const nlohmann::json& json, const std::string& path) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is not a JSON object"));
  }
  JsonFields f(json, path);
  HfConfig out;
  const nlohmann::json* archs = f.Find("architectures");
  if (archs == nullptr || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'architectures' is missing or not a list of names"));
  }
  out.architecture = (*archs)[0].get<std::string>();
  bool known = false;
  for (const char* a : kArchitectures) known |= out.architecture == a;
  if (!known) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unknown architecture '", out.architecture,
                     "' (supported: ", absl::StrJoin(kArchitectures, ", "), ")"));
  }
  if (f.Find("quantization_config") != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": pre-quantized checkpoints (quantization_config) are not supported; convert the "
        "F16/BF16/F32 weights"));
  }
  if (out.architecture == "OPTForCausalLM") return ParseOptConfig(f, std::move(out));
  if (out.architecture == "FalconForCausalLM") return ParseFalconConfig(f, std::move(out));
  for (const char* bias : {"attention_bias", "mlp_bias"}) {
    absl::StatusOr<std::optional<bool>> b = f.OptionalBool(bias);
    if (!b.ok()) return b.status();
    if (b->value_or(false)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": '", bias, "' is not supported"));
    }
  }

  ModelConfig& c = out.config;
  c.architecture = "llama";
  c.rope_source_layout = "half";
  if (absl::Status s = ReadRequiredCounts(f, {{{"hidden_size"}, &c.dim},
                                               {{"intermediate_size"}, &c.n_ff},
                                               {{"num_hidden_layers"}, &c.n_layers},
                                               {{"num_attention_heads"}, &c.n_heads},
                                               {{"vocab_size"}, &c.vocab_size}});
      !s.ok()) {
    return s;
  }
  auto optional_positive = [&](const char* key, int64_t fallback, int64_t* field) -> absl::Status {
    absl::StatusOr<std::optional<int64_t>> v = f.OptionalInt(key);
    if (!v.ok()) return v.status();
    *field = v->value_or(fallback);
    if (*field <= 0 || *field > kMaxModelCount) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '", key, "' has an implausible value ", *field));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = optional_positive("num_key_value_heads", c.n_heads, &c.n_kv_heads);
      !s.ok()) {
    return s;
  }
  if (c.dim % c.n_heads != 0 && f.Find("head_dim") == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": inconsistent shapes: hidden_size ",
                                                   c.dim, " is not a multiple of ",
                                                   "num_attention_heads ", c.n_heads));
  }
  if (absl::Status s = optional_positive("head_dim", c.dim / c.n_heads, &c.head_dim); !s.ok()) {
    return s;
  }
  // transformers' defaults: LlamaConfig 2048 positions, MistralConfig 4096 * 32.
  const int64_t default_positions = IsMistralShaped(out.architecture) ? 4096 * 32 : 2048;
  if (absl::Status s =
          optional_positive("max_position_embeddings", default_positions, &c.context_length);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::optional<int64_t>> window = f.OptionalInt("sliding_window");
  if (!window.ok()) return window.status();
  if (*window && **window < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'sliding_window' has an implausible value ", **window));
  }
  if (*window && **window > 0) {
    if (**window > kMaxModelCount) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": 'sliding_window' has an implausible value ", **window));
    }
    // pinfer's attention has no sliding window; within the window both are the same, so the
    // usable context is the window (the runtime refuses a longer one: ModelConfig).
    c.sliding_window = **window;
    if (**window < c.context_length) {
      out.notes.push_back(absl::StrCat("sliding_window ", **window, " < max_position_embeddings ",
                                       c.context_length, ": context_length set to ", **window));
      c.context_length = **window;
    }
  }
  absl::StatusOr<std::optional<double>> theta = f.OptionalNumber("rope_theta");
  if (!theta.ok()) return theta.status();
  c.rope_theta = theta->value_or(10000.0);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": 'rope_theta' must be positive, got ", c.rope_theta));
  }
  if (const nlohmann::json* scaling = f.Find("rope_scaling"); scaling && !scaling->is_null()) {
    if (absl::Status s = ParseRopeScaling(*scaling, path, c, out.notes); !s.ok()) return s;
  }
  absl::StatusOr<std::optional<double>> eps = f.OptionalNumber("rms_norm_eps");
  if (!eps.ok()) return eps.status();
  c.rms_eps = eps->value_or(1e-6);
  absl::StatusOr<std::optional<bool>> tied = f.OptionalBool("tie_word_embeddings");
  if (!tied.ok()) return tied.status();
  c.tied_embeddings = tied->value_or(false);

  absl::StatusOr<std::optional<std::string>> act = f.OptionalString("hidden_act");
  if (!act.ok()) return act.status();
  const std::string hidden_act = act->value_or("silu");
  out.declared_by = absl::StrCat("config.json hidden_act '", hidden_act, "'");
  if (hidden_act == "silu" || hidden_act == "swish") {
    out.declared_ffn_act = {ActivationKind::kSilu, 0.0f};
  } else if (hidden_act == "relu") {
    out.declared_ffn_act = {
        out.architecture == "BambooForCausalLM" ? ActivationKind::kDRelu : ActivationKind::kRelu,
        0.0f};
    if (out.architecture == "BambooForCausalLM") {
      out.declared_by = "config.json hidden_act 'relu' of BambooForCausalLM (on gate and up)";
    }
  } else if (hidden_act == "fatrelu") {
    absl::StatusOr<std::optional<double>> threshold = f.OptionalNumber("hidden_act_param");
    if (!threshold.ok()) return threshold.status();
    if (!*threshold) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": hidden_act 'fatrelu' needs its threshold in 'hidden_act_param'"));
    }
    out.declared_ffn_act = {ActivationKind::kFatRelu, static_cast<float>(**threshold)};
    out.declared_by =
        absl::StrCat("config.json hidden_act 'fatrelu', hidden_act_param ", **threshold);
  } else if (hidden_act == "relu2") {
    out.declared_ffn_act = {ActivationKind::kRelu2, 0.0f};
  } else if (hidden_act == "gelu_pytorch_tanh" || hidden_act == "gelu" ||
             hidden_act == "gelu_new") {
    out.declared_ffn_act = {ActivationKind::kGelu, 0.0f};
    if (hidden_act == "gelu") {
      out.notes.push_back("hidden_act 'gelu' (erf form) is computed with the tanh approximation");
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": hidden_act '", hidden_act, "' is not supported"));
  }
  c.ffn_act = out.declared_ffn_act;
  if (absl::Status s = ReadSpecialIds(f, out); !s.ok()) return s;
  return out;
}

}  // namespace pinfer
