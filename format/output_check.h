// The one check every tool makes of the files it is about to write, before any work: an output
// must not be one of the tool's inputs (the atomic rename would replace the file being read), nor
// another of its outputs, nor an existing .pi artifact of another kind (a plan written over the
// model it was made for). pi-convert, pi-profile, pi-train-predictor, pi-place (and --calibrate)
// and pi-synth call it.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "format/pi_format.h"

namespace pinfer {

struct OutputFile {
  std::string flag;  // "-o", "--plot": how the user named it
  std::string path;
  std::optional<ArtifactKind> kind;  // the .pi kind written; nullopt for other files (JSON, ...)
};

struct InputFile {
  std::string what;  // "the model", "a dataset"
  std::string path;
};

// InvalidArgument "<flag> <path>: would overwrite <what> <path>; choose another path" (or another
// reason of the same form) for the first output that breaks a rule.
absl::Status CheckOutputs(std::span<const OutputFile> outputs, std::span<const InputFile> inputs);

// Whether `a` and `b` name the same file (through links, ".." and relative paths), whether or
// not it exists yet.
bool SameFile(const std::string& a, const std::string& b);

}  // namespace pinfer
