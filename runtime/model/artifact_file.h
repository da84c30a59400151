// Opening a pipeline artifact made for a model (profile, predictor, plan): the file of the
// expected kind, and the digest of the model it was made for, refused when it is another's. The
// three readers share it, so the refusal reads the same for each.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "format/pi_file.h"

namespace pinfer {

struct OpenedArtifact {
  std::unique_ptr<PiFile> file;
  std::string model_digest;  // of the model it was made for
};

// With `expected_model_digest`, an artifact of another model fails with
// "<path>: <made_for> another model (model digest D, this model is E)", e.g. made_for = "was made
// for" or "the predictor was trained for".
absl::StatusOr<OpenedArtifact> OpenArtifact(const std::string& path, ArtifactKind kind,
                                            std::optional<std::string> expected_model_digest,
                                            std::string_view made_for);

}  // namespace pinfer
