#include "format/output_check.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "format/file_access.h"
#include "format/strings.h"

namespace pinfer {
namespace {

// The kind of the .pi artifact at `path`, when there is one (only the fixed header is read).
std::optional<ArtifactKind> ExistingArtifactKind(const std::string& path, bool& is_pi) {
  is_pi = false;
  absl::StatusOr<std::string> head = ReadRegularFile(path, sizeof(PiHeader));
  if (!head.ok() || head->size() < sizeof(kPiMagic) ||
      std::memcmp(head->data(), kPiMagic, sizeof(kPiMagic)) != 0) {
    return std::nullopt;
  }
  is_pi = true;
  if (head->size() < sizeof(PiHeader)) return std::nullopt;
  PiHeader header;
  std::memcpy(&header, head->data(), sizeof(header));
  return ArtifactKindFromRaw(header.kind);
}

}  // namespace

bool SameFile(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  if (a == b) return true;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path cb = fs::weakly_canonical(b, ec);
  return !ec && ca == cb;
}

absl::Status CheckOutputs(std::span<const OutputFile> outputs, std::span<const InputFile> inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputFile& out = outputs[i];
    const std::string named = absl::StrCat(out.flag, " ", out.path, ": ");
    for (const InputFile& in : inputs) {
      if (!in.path.empty() && SameFile(out.path, in.path)) {
        return absl::InvalidArgumentError(absl::StrCat(named, "would overwrite ", in.what, " ",
                                                       in.path, "; choose another path"));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (SameFile(out.path, outputs[j].path)) {
        return absl::InvalidArgumentError(
            absl::StrCat(named, "is also the path of ", outputs[j].flag, "; choose another path"));
      }
    }
    bool is_pi = false;
    const std::optional<ArtifactKind> existing = ExistingArtifactKind(out.path, is_pi);
    if (is_pi && (!out.kind || !existing || *existing != *out.kind)) {
      return absl::InvalidArgumentError(absl::StrCat(
          named, "would overwrite ",
          existing ? absl::StrCat("a ", Sv(ArtifactKindName(*existing)), " artifact")
                   : std::string("a .pi artifact"),
          out.kind ? absl::StrCat(" with a ", Sv(ArtifactKindName(*out.kind))) : std::string(),
          "; choose another path"));
    }
  }
  return absl::OkStatus();
}

}  // namespace pinfer
