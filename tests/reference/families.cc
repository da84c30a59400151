// One line a family: config.json "architectures"[0] and the function computing its forward pass.
#include "tests/reference/torch_reference.h"

namespace pinfer::reference {
namespace {

constexpr Family kFamilies[] = {
    {"LlamaForCausalLM", LlamaForward},
    {"MistralForCausalLM", LlamaForward},
    {"OPTForCausalLM", OptForward},
    {"FalconForCausalLM", FalconForward},
};

}  // namespace

std::span<const Family> Families() { return kFamilies; }

FamilyForward FindFamily(const std::string& architecture) {
  for (const Family& f : kFamilies) {
    if (architecture == f.architecture) return f.forward;
  }
  return nullptr;
}

}  // namespace pinfer::reference
