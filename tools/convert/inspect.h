// pi-inspect's work: a readable (or JSON) account of a .pi artifact — header, metadata (long
// arrays abbreviated), tensor table, content digest — and, on request, a check of every tensor's
// checksum and, for a model, of its header values as the runtime loads them. Opening the file
// already validates its whole structure (PiFile::Open), so a file that opens and verifies is sound.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pinfer {

struct InspectOptions {
  bool verify = false;
  bool json = false;
  bool progress = false;  // a progress bar on stderr while verifying
};

struct InspectReport {
  std::string text;                 // what to print on stdout
  std::vector<std::string> failed;  // tensors whose checksum does not match
  int verified = 0;                 // tensors checked
  // For a model, what the runtime's loader says of the header against the tensors (plausible
  // ranges, counts, shapes, token ids): empty when it loads. Checksums alone cannot see a header
  // value that was wrong when the file was written.
  std::string model_error;
  bool sound() const { return failed.empty() && model_error.empty(); }
  std::string first_error;  // the first mismatch, one line
};

// An error when the file cannot be opened or its structure is damaged.
absl::StatusOr<InspectReport> InspectPiFile(const std::string& path, const InspectOptions& options);

}  // namespace pinfer
