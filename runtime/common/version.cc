#include "runtime/common/version.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hwy/highway.h"
#include "pinfer_git_commit.h"  // generated at build time: PINFER_GIT_COMMIT

namespace pinfer {

std::string_view BuildCommit() { return PINFER_GIT_COMMIT; }

std::string DescribeCudaArchitectures(std::string_view architectures) {
  std::vector<std::string> parts;
  for (absl::string_view arch :
       absl::StrSplit(absl::string_view(architectures.data(), architectures.size()),
                      absl::ByAnyChar(",;"), absl::SkipWhitespace())) {
    arch = absl::StripAsciiWhitespace(arch);
    if (absl::ConsumeSuffix(&arch, "-real")) {
      parts.push_back(absl::StrCat("sm_", arch));
    } else if (absl::ConsumeSuffix(&arch, "-virtual")) {
      parts.push_back(absl::StrCat("compute_", arch));
    } else if (!arch.empty() && arch[0] >= '0' && arch[0] <= '9') {
      // A bare number is both: machine code and the PTX for later GPUs.
      parts.push_back(absl::StrCat("sm_", arch));
      parts.push_back(absl::StrCat("compute_", arch));
    } else {
      parts.push_back(std::string(arch));  // all, all-major, native: nvcc's choice
    }
  }
  return parts.empty() ? std::string("none") : absl::StrJoin(parts, ", ");
}

std::vector<std::string> CompiledSimdTargets() {
  std::vector<std::string> names;
  // Highway's target bits: a lower bit is a better target.
  for (int64_t targets = HWY_TARGETS; targets != 0; targets &= targets - 1) {
    names.push_back(hwy::TargetName(targets & -targets));
  }
  return names;
}

std::string SelectedSimdTarget() {
  // What HWY_DYNAMIC_DISPATCH picks: the best compiled target this CPU supports.
  const int64_t usable = HWY_TARGETS & hwy::SupportedTargets();
  return usable == 0 ? std::string("none") : hwy::TargetName(usable & -usable);
}

std::string VersionLine(std::string_view program) {
  return absl::StrCat(std::string(program), " ", PINFER_VERSION, " (commit ",
                      std::string(BuildCommit()),
                      "), CUDA: ", DescribeCudaArchitectures(PINFER_CUDA_ARCHITECTURES),
                      ", SIMD: ", absl::StrJoin(CompiledSimdTargets(), ", "),
                      " (selected: ", SelectedSimdTarget(), ")");
}

}  // namespace pinfer
