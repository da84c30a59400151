// Crash-safe output: data goes to a temporary file beside the target, which is fsync'ed and renamed
// over the target only on Commit(). A failed or abandoned write removes the temporary file, so a
// half-written artifact never appears under its final name.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer {

class AtomicFile {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();  // Removes the temporary file unless committed.
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends at the current end.
  absl::Status Append(std::span<const uint8_t> bytes);
  absl::Status Append(std::string_view text) {
    return Append(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  // Writes at an absolute offset (the file grows as needed).
  absl::Status WriteAt(uint64_t offset, std::span<const uint8_t> bytes);
  // Sets the final size (sparse extension is fine: zero bytes are not written).
  absl::Status Truncate(uint64_t size);
  // fsync, rename over the target, fsync the directory.
  absl::Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  absl::Status Error(std::string_view what) const;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t end_ = 0;
  bool committed_ = false;
  int pending_slot_ = -1;  // slot in the signal-cleanup registry
};

// Removes the temporary files of every AtomicFile not yet committed or destroyed. Async-signal-safe
// (only unlink), for interrupt handlers: Ctrl-C during a long write leaves no temporary file.
void RemovePendingTemporaryFiles();

// Writes `contents` to `path` atomically.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

}  // namespace pinfer
