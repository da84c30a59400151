#include "tools/convert/activation_choice.h"

#include "absl/strings/str_cat.h"

namespace pinfer {

Activation ChooseFfnActivation(const ActivationFlags& flags,
                               const std::optional<Activation>& declared,
                               const std::string& declared_by, std::vector<std::string>& notes) {
  if (flags.ffn_act) {
    if (declared && !(*declared == *flags.ffn_act)) {
      notes.push_back(absl::StrCat("--ffn-act ", flags.ffn_act->ToString(), " overrides ",
                                   declared->ToString(), " (", declared_by, ")"));
    }
    return *flags.ffn_act;
  }
  if (declared) return *declared;
  return Activation{ActivationKind::kSilu, 0.0f};
}

Activation ChooseNormActivation(const ActivationFlags& flags) {
  return flags.norm_act.value_or(Activation{ActivationKind::kNone, 0.0f});
}

}  // namespace pinfer
