#include "runtime/model/activation.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

struct NamedKind {
  std::string_view name;
  ActivationKind kind;
  bool has_param;
};

constexpr NamedKind kKinds[] = {
    {"none", ActivationKind::kNone, false},
    {"silu", ActivationKind::kSilu, false},
    {"gelu", ActivationKind::kGelu, false},
    {"relu", ActivationKind::kRelu, false},
    {"relu2", ActivationKind::kRelu2, false},
    {"drelu", ActivationKind::kDRelu, false},
    {"fatrelu", ActivationKind::kFatRelu, true},
    {"shifted_relu", ActivationKind::kShiftedRelu, true},
    {"gelu_erf", ActivationKind::kGeluErf, false},
};

}  // namespace

absl::StatusOr<Activation> Activation::Parse(std::string_view text, bool for_norm) {
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const char* expected = for_norm ? "none or shifted_relu:S"
                                  : "silu, gelu, gelu_erf, relu, relu2, drelu, fatrelu:T or shifted_relu:S";
  for (const NamedKind& k : kKinds) {
    if (k.name != name) continue;
    const bool allowed =
        for_norm ? (k.kind == ActivationKind::kNone || k.kind == ActivationKind::kShiftedRelu)
                 : k.kind != ActivationKind::kNone;
    if (!allowed) break;
    Activation act{k.kind, 0.0f};
    if (k.has_param) {
      if (colon == std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "activation '", Sv(text), "' needs a parameter, as in ", Sv(name), ":0.25"));
      }
      if (!absl::SimpleAtof(Sv(text.substr(colon + 1)), &act.param) || !std::isfinite(act.param)) {
        return absl::InvalidArgumentError(
            absl::StrCat("activation '", Sv(text), "' has a parameter that is not a number"));
      }
    } else if (colon != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("activation '", Sv(name), "' takes no parameter"));
    }
    return act;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown activation '", Sv(text), "' (expected ", expected, ")"));
}

std::string Activation::ToString() const {
  for (const NamedKind& k : kKinds) {
    if (k.kind == kind)
      return k.has_param ? absl::StrCat(Sv(k.name), ":", param) : std::string(k.name);
  }
  return "unknown";
}

bool Activation::HasExactZeros() const {
  return kind != ActivationKind::kSilu && kind != ActivationKind::kGelu &&
         kind != ActivationKind::kGeluErf && kind != ActivationKind::kNone;
}

float Activation::Gate(float g) const { return ActivationGate(kind, param, g); }

float Activation::Combine(float g, float u) const { return ActivationCombine(kind, param, g, u); }

float Activation::ApplyToNorm(float h) const {
  if (kind == ActivationKind::kShiftedRelu) return h > param ? h - param : 0.0f;
  return h;
}

}  // namespace pinfer
