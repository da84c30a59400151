#include "tools/convert/gguf_layouts.h"

#include <span>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace pinfer {
namespace {

// One tensor name of an architecture: GGUF's (without "blk.N." for a layer's) and ours.
struct Name {
  const char* gguf;
  const char* ours;  // nullptr: see the role
  GgufRole role;
  bool required;
};

constexpr Name kLlamaGlobal[] = {
    {"token_embd.weight", "token_embd", GgufRole::kDirect, true},
    {"output_norm.weight", "output_norm", GgufRole::kDirect, true},
    {"output.weight", "output", GgufRole::kDirect, false},
    {"rope_freqs.weight", nullptr, GgufRole::kRopeFreqs, false},
};
constexpr Name kLlamaLayer[] = {
    {"attn_norm.weight", "attn_norm", GgufRole::kDirect, true},
    {"attn_q.weight", "attn_q", GgufRole::kDirect, true},
    {"attn_k.weight", "attn_k", GgufRole::kDirect, true},
    {"attn_v.weight", "attn_v", GgufRole::kDirect, true},
    {"attn_output.weight", "attn_output", GgufRole::kDirect, true},
    {"ffn_norm.weight", "ffn_norm", GgufRole::kDirect, true},
    {"ffn_gate.weight", "ffn_gate", GgufRole::kDirect, true},
    {"ffn_up.weight", "ffn_up", GgufRole::kDirect, true},
    {"ffn_down.weight", "ffn_down_t", GgufRole::kTransposed, false},
    {"ffn_down_t.weight", "ffn_down_t", GgufRole::kDirect, false},  // PowerInfer: neuron-major
    {"fc1.weight", nullptr, GgufRole::kPredictor, false},
    {"fc2.weight", nullptr, GgufRole::kPredictor, false},
    {"attn_rot_embd.weight", nullptr, GgufRole::kIgnored, false},
};

constexpr Name kFalconGlobal[] = {
    {"token_embd.weight", "token_embd", GgufRole::kDirect, true},
    {"output_norm.weight", "output_norm", GgufRole::kDirect, true},
    {"output_norm.bias", "output_norm_b", GgufRole::kDirect, true},
    {"output.weight", "output", GgufRole::kDirect, false},
};
constexpr Name kFalconLayer[] = {
    {"attn_norm.weight", "ffn_norm", GgufRole::kDirect, true},
    {"attn_norm.bias", "ffn_norm_b", GgufRole::kDirect, true},
    {"attn_norm_2.weight", "attn_norm", GgufRole::kDirect, false},
    {"attn_norm_2.bias", "attn_norm_b", GgufRole::kDirect, false},
    {"attn_qkv.weight", nullptr, GgufRole::kFusedQkv, true},
    {"attn_output.weight", "attn_output", GgufRole::kDirect, true},
    {"ffn_up.weight", "ffn_gate", GgufRole::kDirect, true},
    {"ffn_down.weight", "ffn_down_t", GgufRole::kTransposed, false},
    {"ffn_down_t.weight", "ffn_down_t", GgufRole::kDirect, false},
    {"fc1.weight", nullptr, GgufRole::kPredictor, false},
    {"fc2.weight", nullptr, GgufRole::kPredictor, false},
};

constexpr Name kOptGlobal[] = {
    {"token_embd.weight", "token_embd", GgufRole::kDirect, true},
    {"position_embd.weight", "position_embd", GgufRole::kDirect, true},
    {"output_norm.weight", "output_norm", GgufRole::kDirect, true},
    {"output_norm.bias", "output_norm_b", GgufRole::kDirect, true},
    {"output.weight", "output", GgufRole::kDirect, false},
};
constexpr Name kOptLayer[] = {
    {"attn_norm.weight", "attn_norm", GgufRole::kDirect, true},
    {"attn_norm.bias", "attn_norm_b", GgufRole::kDirect, true},
    {"attn_q.weight", "attn_q", GgufRole::kDirect, true},
    {"attn_q.bias", "attn_q_b", GgufRole::kDirect, true},
    {"attn_k.weight", "attn_k", GgufRole::kDirect, true},
    {"attn_k.bias", "attn_k_b", GgufRole::kDirect, true},
    {"attn_v.weight", "attn_v", GgufRole::kDirect, true},
    {"attn_v.bias", "attn_v_b", GgufRole::kDirect, true},
    {"attn_output.weight", "attn_output", GgufRole::kDirect, true},
    {"attn_output.bias", "attn_output_b", GgufRole::kDirect, true},
    {"ffn_norm.weight", "ffn_norm", GgufRole::kDirect, true},
    {"ffn_norm.bias", "ffn_norm_b", GgufRole::kDirect, true},
    {"ffn_up.weight", "ffn_gate", GgufRole::kDirect, true},
    {"ffn_up.bias", "ffn_gate_b", GgufRole::kDirect, true},
    {"ffn_down.weight", "ffn_down_t", GgufRole::kTransposed, false},
    {"ffn_down.bias", "ffn_down_b", GgufRole::kDirect, false},
    {"ffn_down_t.weight", "ffn_down_t", GgufRole::kDirect, false},
    {"ffn_down_t.bias", "ffn_down_b", GgufRole::kDirect, false},
    {"fc1.weight", nullptr, GgufRole::kPredictor, false},
    {"fc2.weight", nullptr, GgufRole::kPredictor, false},
};

struct Layout {
  std::span<const Name> global, layer;
};

std::optional<Layout> LayoutOf(const std::string& arch) {
  if (arch == "llama" || arch == "bamboo") return Layout{kLlamaGlobal, kLlamaLayer};
  if (arch == "falcon") return Layout{kFalconGlobal, kFalconLayer};
  if (arch == "opt") return Layout{kOptGlobal, kOptLayer};
  return std::nullopt;
}

GgufMapping MappingOf(const Name& n, int layer) {
  GgufMapping m;
  m.role = n.role;
  m.layer = layer;
  if (n.ours != nullptr) {
    m.our_name = layer < 0 ? n.ours : absl::StrCat("blk.", layer, ".", n.ours);
  }
  return m;
}

}  // namespace

bool IsKnownGgufArchitecture(const std::string& arch) { return LayoutOf(arch).has_value(); }

std::optional<GgufMapping> MapGgufTensor(const std::string& arch, const std::string& gguf_name,
                                         int64_t n_layers) {
  const std::optional<Layout> layout = LayoutOf(arch);
  if (!layout) return std::nullopt;
  for (const Name& n : layout->global) {
    if (gguf_name == n.gguf) return MappingOf(n, -1);
  }
  // "blk.N.<suffix>" with 0 <= N < n_layers.
  constexpr std::string_view kBlock = "blk.";
  if (!gguf_name.starts_with(kBlock)) return std::nullopt;
  const std::string_view rest = std::string_view(gguf_name).substr(kBlock.size());
  const size_t dot = rest.find('.');
  int layer = -1;
  if (dot == std::string_view::npos ||
      !absl::SimpleAtoi(std::string(rest.substr(0, dot)), &layer) || layer < 0 ||
      layer >= n_layers) {
    return std::nullopt;
  }
  const std::string_view suffix = rest.substr(dot + 1);
  for (const Name& n : layout->layer) {
    if (suffix == n.gguf) return MappingOf(n, layer);
  }
  return std::nullopt;
}

std::vector<std::string> RequiredGgufTensors(const std::string& arch, int64_t n_layers) {
  std::vector<std::string> out;
  const std::optional<Layout> layout = LayoutOf(arch);
  if (!layout) return out;
  for (const Name& n : layout->global) {
    if (n.required) out.push_back(n.gguf);
  }
  for (int64_t l = 0; l < n_layers; ++l) {
    for (const Name& n : layout->layer) {
      if (n.required) out.push_back(absl::StrCat("blk.", l, ".", n.gguf));
    }
  }
  return out;
}

}  // namespace pinfer
