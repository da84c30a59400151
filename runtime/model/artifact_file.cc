#include "runtime/model/artifact_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "runtime/model/model_config.h"

namespace pinfer {

absl::StatusOr<OpenedArtifact> OpenArtifact(const std::string& path, ArtifactKind kind,
                                            std::optional<std::string> expected_model_digest,
                                            std::string_view made_for) {
  absl::StatusOr<std::unique_ptr<PiFile>> opened = PiFile::Open(path, {.expected_kind = kind});
  if (!opened.ok()) return opened.status();
  OpenedArtifact artifact;
  artifact.file = *std::move(opened);
  absl::StatusOr<std::string> digest = artifact.file->GetString(keys::kModelDigest);
  if (!digest.ok()) return digest.status();
  artifact.model_digest = *digest;
  if (expected_model_digest && *expected_model_digest != artifact.model_digest) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", Sv(made_for), " another model (model digest ",
                     artifact.model_digest, ", this model is ", *expected_model_digest, ")"));
  }
  return artifact;
}

}  // namespace pinfer
