// Run-time target selection for the Highway kernels: reports the target the dispatcher picks and
// lets tests/benchmarks pin one. Compiled per target like the kernels, with the same target set
// (the compile definitions of pinfer_cpu), so the names listed here are exactly the dispatchable
// ones.
#include <string>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/simd_targets.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

const char* ChosenTargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/strings.h"
#include "runtime/cpu/simd_targets.h"

namespace pinfer::cpu {
namespace simd {

HWY_EXPORT(ChosenTargetName);

const char* ChosenTargetName() { return HWY_DYNAMIC_DISPATCH(ChosenTargetName)(); }

}  // namespace simd

namespace {

struct CompiledTarget {
  std::string name;
  int64_t bit;
};

// Captured once, before any ForceSimdTarget changes what hwy::SupportedTargets() reports.
const std::vector<CompiledTarget>& CompiledTargets() {
  static const std::vector<CompiledTarget>* targets = [] {
    auto* list = new std::vector<CompiledTarget>;
    std::vector<int64_t> bits = hwy::SupportedAndGeneratedTargets();  // lowest bit (best) first
    for (int64_t bit : bits) list->push_back({hwy::TargetName(bit), bit});
    return list;
  }();
  return *targets;
}

}  // namespace

std::vector<std::string> SupportedSimdTargets() {
  std::vector<std::string> names;
  for (const CompiledTarget& target : CompiledTargets()) names.push_back(target.name);
  return names;
}

absl::Status ForceSimdTarget(std::string_view name) {
  const std::vector<CompiledTarget>& targets = CompiledTargets();
  if (name.empty()) {
    hwy::SetSupportedTargetsForTest(0);
    return absl::OkStatus();
  }
  for (const CompiledTarget& target : targets) {
    if (target.name == name) {
      hwy::SetSupportedTargetsForTest(target.bit);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown or unsupported SIMD target '", Sv(name),
                   "' (this CPU runs: ", absl::StrJoin(SupportedSimdTargets(), ", "), ")"));
}

}  // namespace pinfer::cpu
#endif  // HWY_ONCE
