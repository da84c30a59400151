#include "bench/synth/shapes.h"

#include <array>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "format/strings.h"

namespace pinfer::synth {
namespace {

// Llama-2 (Touvron et al. 2023, and the released config.json files) and Falcon-40B (its
// config.json: hidden 8192, 60 layers, 128 query heads, 8 KV heads, vocab 65024, FFN 4x hidden).
const std::array<ShapeSpec, 4> kNamedShapes = {{
    {"llama-7b", 4096, 11008, 32, 32, 32, 32000, 4096},
    {"llama-13b", 5120, 13824, 40, 40, 40, 32000, 4096},
    {"llama-70b", 8192, 28672, 80, 64, 8, 32000, 4096},
    {"falcon-40b", 8192, 32768, 60, 128, 8, 65024, 2048},
}};

constexpr std::string_view kCustom = "custom:";
constexpr char kCustomGrammar[] = "custom:d=D,ff=F,layers=L,heads=H[,kv_heads=K][,vocab=V][,ctx=C]";

absl::Status ShapeError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("--shape '", Sv(text), "': ", Sv(reason)));
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
  return absl::OkStatus();
}

}  // namespace

int64_t ShapeSpec::Parameters() const {
  const int64_t kv_dim = n_kv_heads * head_dim();
  const int64_t per_layer = 2 * dim * dim + 2 * kv_dim * dim + 3 * n_ff * dim + 2 * dim;
  return 2 * vocab_size * dim + n_layers * per_layer + dim;
}

std::string ShapeSpec::ToString() const {
  if (name != "custom") return name;
  return absl::StrFormat("custom:d=%d,ff=%d,layers=%d,heads=%d,kv_heads=%d,vocab=%d,ctx=%d", dim,
                         n_ff, n_layers, n_heads, n_kv_heads, vocab_size, context_length);
}

std::string NamedShapesHelp() {
  std::string help;
  for (const ShapeSpec& s : kNamedShapes) {
    absl::StrAppendFormat(&help, "  %-10s d=%d ff=%d layers=%d heads=%d kv_heads=%d vocab=%d\n",
                          s.name, s.dim, s.n_ff, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size);
  }
  absl::StrAppend(&help, "  ", kCustomGrammar, "\n");
  return help;
}

absl::StatusOr<ShapeSpec> ParseShape(std::string_view text) {
  for (const ShapeSpec& s : kNamedShapes) {
    if (text == s.name) return s;
  }
  if (!text.starts_with(kCustom)) {
    return ShapeError(text, absl::StrCat("unknown shape (expected llama-7b, llama-13b, llama-70b, "
                                         "falcon-40b or ",
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
  if (absl::Status status = Validate(text, s); !status.ok()) return status;
  return s;
}

}  // namespace pinfer::synth
