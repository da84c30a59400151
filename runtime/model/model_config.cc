#include "runtime/model/model_config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {

namespace {

bool KnownArchitecture(const std::string& a) { return a == "llama" || a == "opt" || a == "falcon"; }

absl::Status UnknownArchitecture(const std::string& a) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown architecture '", a, "' (supported: llama, opt, falcon)"));
}

const char* NormName(NormKind k) { return k == NormKind::kLayer ? "layer" : "rms"; }
const char* PositionsName(PositionKind k) {
  return k == PositionKind::kLearned ? "learned" : "rope";
}

}  // namespace

RopeFrequencies ModelConfig::Rope() const {
  RopeFrequencies rope(rope_theta);
  // Validate() bounds the table; a config that skipped it gets plain RoPE rather than an overrun.
  const int64_t pairs = static_cast<int64_t>(rope_freq_factors.size());
  if (pairs > 0 && pairs <= kMaxRopePairs) {
    rope.n_factors = static_cast<int32_t>(rope_freq_factors.size());
    std::copy(rope_freq_factors.begin(), rope_freq_factors.end(), rope.factors);
  }
  return rope;
}

absl::Status ModelConfig::Validate() const {
  if (!KnownArchitecture(architecture)) return UnknownArchitecture(architecture);
  // Each architecture is one fixed combination of the structural hparams.
  const ModelConfig& c = *this;
  const bool layer_norm = c.norm == NormKind::kLayer;
  const bool matches =
      architecture == "opt" ? layer_norm && c.positions == PositionKind::kLearned && !c.ffn_gated &&
                                  c.biases && !c.parallel_attn
      : architecture == "falcon" ? layer_norm && c.positions == PositionKind::kRope &&
                                       !c.ffn_gated && !c.biases && c.parallel_attn
                                 : c.llama_shaped();
  if (!matches) {
    return absl::InvalidArgumentError(
        absl::StrCat("architecture '", architecture, "' with norm ", NormName(norm), ", positions ",
                     PositionsName(positions), ", ffn_gated ", ffn_gated, ", biases ", biases,
                     ", parallel_attn ", parallel_attn, " is not a combination pinfer runs"));
  }
  if (positions == PositionKind::kLearned && (position_offset < 0 || position_offset > 1024)) {
    return absl::InvalidArgumentError(
        absl::StrCat("position_offset must lie in [0, 1024], got ", position_offset));
  }
  const struct {
    const char* name;
    int64_t value;
  } positives[] = {{"dim", dim},
                   {"n_layers", n_layers},
                   {"n_heads", n_heads},
                   {"n_kv_heads", n_kv_heads},
                   {"head_dim", head_dim},
                   {"n_ff", n_ff},
                   {"vocab_size", vocab_size},
                   {"context_length", context_length}};
  for (const auto& p : positives) {
    if (p.value <= 0)
      return absl::InvalidArgumentError(absl::StrCat(p.name, " must be positive, got ", p.value));
    // Far above any real model, and low enough that products of two counts cannot overflow.
    if (p.value > kMaxModelCount) {
      return absl::InvalidArgumentError(
          absl::StrCat(p.name, " ", p.value, " is implausible (at most ", kMaxModelCount, ")"));
    }
  }
  if (sliding_window < 0 || sliding_window > kMaxModelCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("sliding_window ", sliding_window, " is implausible"));
  }
  if (n_heads % n_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_heads ", n_heads, " is not a multiple of n_kv_heads ", n_kv_heads));
  }
  if (positions == PositionKind::kRope && head_dim % 2 != 0)
    return absl::InvalidArgumentError("head_dim must be even for RoPE");
  // (NaN fails every comparison, so these also refuse it.)
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope_theta must be positive and finite, got ", rope_theta));
  }
  if (!rope_freq_factors.empty()) {
    if (static_cast<int64_t>(rope_freq_factors.size()) != head_dim / 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_freq_factors has ", rope_freq_factors.size(),
                       " entries; RoPE of head_dim ", head_dim, " needs ", head_dim / 2));
    }
    if (head_dim / 2 > kMaxRopePairs) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rope_freq_factors with head_dim ", head_dim, " (at most ", 2 * kMaxRopePairs, ")"));
    }
    for (float f : rope_freq_factors) {
      if (!(f > 0) || !std::isfinite(f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("rope_freq_factors must be positive and finite, got ", f));
      }
    }
  }
  if (!(rms_eps > 0 && rms_eps < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("rms_eps must lie in (0, 1), got ", rms_eps));
  }
  if (ffn_act.kind == ActivationKind::kNone) {
    return absl::InvalidArgumentError("the FFN activation cannot be 'none'");
  }
  if (ffn_act.kind == ActivationKind::kGeluErf && ffn_gated) {
    // Only the gate-less row routine computes it; the fused gated kernels (CPU SIMD, CUDA) do not.
    return absl::InvalidArgumentError("gelu_erf is an activation of gate-less FFNs only");
  }
  if (norm_act.kind != ActivationKind::kNone && norm_act.kind != ActivationKind::kShiftedRelu) {
    return absl::InvalidArgumentError("the norm activation must be none or shifted_relu:S");
  }
  return absl::OkStatus();
}

void ModelConfig::ToMetadata(Metadata& m) const {
  m.SetString(keys::kArchitecture, architecture);
  m.SetString(keys::kName, name);
  m.SetBool(keys::kSynthetic, synthetic);
  m.SetInt("llama.dim", dim);
  m.SetInt("llama.n_layers", n_layers);
  m.SetInt("llama.n_heads", n_heads);
  m.SetInt("llama.n_kv_heads", n_kv_heads);
  m.SetInt("llama.head_dim", head_dim);
  m.SetInt("llama.n_ff", n_ff);
  m.SetInt("llama.vocab_size", vocab_size);
  m.SetInt("llama.context_length", context_length);
  if (sliding_window > 0) m.SetInt("llama.sliding_window", sliding_window);
  m.SetFloat("llama.rope_theta", rope_theta);
  if (!rope_freq_factors.empty()) m.SetFloatArray("llama.rope_freq_factors", rope_freq_factors);
  m.SetFloat("llama.rms_eps", rms_eps);
  m.SetString("llama.ffn_act", ffn_act.ToString());
  m.SetString("llama.norm_act", norm_act.ToString());
  m.SetBool("llama.tied_embeddings", tied_embeddings);
  m.SetString("llama.rope_source_layout", rope_source_layout);
  // Written only when they differ from llama's, so that llama files stay as they were.
  if (!llama_shaped()) {
    m.SetString("llama.norm", NormName(norm));
    m.SetString("llama.positions", PositionsName(positions));
    m.SetInt("llama.position_offset", position_offset);
    m.SetBool("llama.ffn_gated", ffn_gated);
    m.SetBool("llama.biases", biases);
    m.SetBool("llama.parallel_attn", parallel_attn);
  }
}

absl::StatusOr<ModelConfig> ModelConfig::FromMetadata(const Metadata& m) {
  ModelConfig c;
  absl::StatusOr<std::string> arch = m.GetString(keys::kArchitecture);
  if (!arch.ok()) return arch.status();
  c.architecture = *arch;
  if (!KnownArchitecture(c.architecture)) return UnknownArchitecture(c.architecture);
  c.name = m.GetString(keys::kName).value_or("");
  c.synthetic = m.GetBool(keys::kSynthetic).value_or(false);
  const struct {
    const char* key;
    int64_t* field;
  } ints[] = {{"llama.dim", &c.dim},
              {"llama.n_layers", &c.n_layers},
              {"llama.n_heads", &c.n_heads},
              {"llama.n_kv_heads", &c.n_kv_heads},
              {"llama.head_dim", &c.head_dim},
              {"llama.n_ff", &c.n_ff},
              {"llama.vocab_size", &c.vocab_size},
              {"llama.context_length", &c.context_length}};
  for (const auto& i : ints) {
    absl::StatusOr<int64_t> v = m.GetInt(i.key);
    if (!v.ok()) return v.status();
    *i.field = *v;
  }
  if (m.Has("llama.sliding_window")) {
    absl::StatusOr<int64_t> window = m.GetInt("llama.sliding_window");
    if (!window.ok()) return window.status();
    c.sliding_window = *window;
  }
  absl::StatusOr<double> theta = m.GetFloat("llama.rope_theta");
  if (!theta.ok()) return theta.status();
  c.rope_theta = *theta;
  if (m.Has("llama.rope_freq_factors")) {
    absl::StatusOr<std::vector<float>> factors = m.GetFloatArray("llama.rope_freq_factors");
    if (!factors.ok()) return factors.status();
    c.rope_freq_factors = *std::move(factors);
  }
  absl::StatusOr<double> eps = m.GetFloat("llama.rms_eps");
  if (!eps.ok()) return eps.status();
  c.rms_eps = *eps;
  absl::StatusOr<std::string> ffn = m.GetString("llama.ffn_act");
  if (!ffn.ok()) return ffn.status();
  absl::StatusOr<Activation> ffn_act = Activation::Parse(*ffn);
  if (!ffn_act.ok()) return ffn_act.status();
  c.ffn_act = *ffn_act;
  absl::StatusOr<Activation> norm_act =
      Activation::Parse(m.GetString("llama.norm_act").value_or("none"), /*for_norm=*/true);
  if (!norm_act.ok()) return norm_act.status();
  c.norm_act = *norm_act;
  c.tied_embeddings = m.GetBool("llama.tied_embeddings").value_or(false);
  c.rope_source_layout = m.GetString("llama.rope_source_layout").value_or("interleaved");
  const std::string norm = m.GetString("llama.norm").value_or("rms");
  if (norm != "rms" && norm != "layer") {
    return absl::InvalidArgumentError(
        absl::StrCat("llama.norm must be rms or layer, got '", norm, "'"));
  }
  c.norm = norm == "layer" ? NormKind::kLayer : NormKind::kRms;
  const std::string positions = m.GetString("llama.positions").value_or("rope");
  if (positions != "rope" && positions != "learned") {
    return absl::InvalidArgumentError(
        absl::StrCat("llama.positions must be rope or learned, got '", positions, "'"));
  }
  c.positions = positions == "learned" ? PositionKind::kLearned : PositionKind::kRope;
  c.position_offset = m.GetInt("llama.position_offset").value_or(0);
  c.ffn_gated = m.GetBool("llama.ffn_gated").value_or(true);
  c.biases = m.GetBool("llama.biases").value_or(false);
  c.parallel_attn = m.GetBool("llama.parallel_attn").value_or(false);
  if (absl::Status s = c.Validate(); !s.ok()) return s;
  return c;
}

}  // namespace pinfer
