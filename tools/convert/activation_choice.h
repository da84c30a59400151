// Which activation a converted model gets. Sources that say it (config.json's hidden_act,
// PowerInfer's GGUF variants) are believed; llama2.c and plain GGUF files do not say it, so the
// user declares it with --ffn-act / --norm-act. An explicit flag always wins, so that a source
// that says it wrongly (PowerInfer runs ProSparse's fatrelu as plain relu) can be corrected; the
// contradiction is reported as a note.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/model/activation.h"

namespace pinfer {

// Activation flags as the user gave them; nullopt when the flag was not given.
struct ActivationFlags {
  std::optional<Activation> ffn_act;
  std::optional<Activation> norm_act;
};

// `declared` is what the source says (nullopt: nothing), `declared_by` says where ("config.json
// hidden_act 'relu'"). Defaults: silu for the FFN, none for the norm.
Activation ChooseFfnActivation(const ActivationFlags& flags,
                               const std::optional<Activation>& declared,
                               const std::string& declared_by, std::vector<std::string>& notes);
Activation ChooseNormActivation(const ActivationFlags& flags);

}  // namespace pinfer
