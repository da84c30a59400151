// Opening input files safely. Every reader of a user-named file goes through here, so that a FIFO,
// a device or a directory given where a file is expected is refused at once (open() on a FIFO
// without a writer would block forever), and the error says why: missing, permission denied, a
// directory, not a regular file.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer {

// A read-only descriptor of the regular file `path` (O_CLOEXEC; blocking reads). The caller
// closes it. Errors start with the path.
absl::StatusOr<int> OpenRegularFile(const std::string& path);

// The same checks without keeping the file open.
absl::Status CheckRegularFile(const std::string& path);

// The contents of the regular file `path`: all of it, or its first `max_bytes`.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path,
                                            size_t max_bytes = static_cast<size_t>(-1));

}  // namespace pinfer
