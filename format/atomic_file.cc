#include "format/atomic_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

// Temporary paths of live AtomicFiles, readable from a signal handler: fixed slots of atomic
// pointers to strings that stay allocated while registered.
constexpr int kPendingSlots = 64;
std::atomic<const char*> g_pending[kPendingSlots];

int RegisterPending(const std::string& temp_path) {
  const char* copy = strdup(temp_path.c_str());
  for (int i = 0; i < kPendingSlots; ++i) {
    const char* expected = nullptr;
    if (g_pending[i].compare_exchange_strong(expected, copy)) return i;
  }
  free(const_cast<char*>(copy));
  return -1;  // more than kPendingSlots files at once: those are not cleaned up on a signal
}

void UnregisterPending(int slot) {
  if (slot < 0) return;
  const char* path = g_pending[slot].exchange(nullptr);
  free(const_cast<char*>(path));
}

// The temporary files of `path`'s earlier writers that no live process holds: a writer keeps an
// exclusive flock on its temporary file until it commits or gives up, so a temporary file whose
// lock can be taken belongs to a writer that was killed (SIGKILL, power loss) before its
// destructor or signal handler could remove it. Only names of our own pattern are touched.
void RemoveStaleTemporaryFiles(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // mkstemp's suffix: exactly six characters after the prefix.
    if (name.size() != prefix.size() + 6 || !name.starts_with(prefix)) continue;
    const int fd = open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0) {
      unlink(it->path().c_str());
    }
    close(fd);
  }
}

}  // namespace

void RemovePendingTemporaryFiles() {
  for (auto& slot : g_pending) {
    const char* path = slot.load();
    if (path != nullptr) unlink(path);
  }
}

absl::Status AtomicFile::Error(std::string_view what) const {
  return absl::InternalError(absl::StrCat(path_, ": ", Sv(what), ": ", std::strerror(errno)));
}

absl::StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty output path");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, expected a file path"));
  }
  RemoveStaleTemporaryFiles(path);
  std::string temp = absl::StrCat(path, ".tmp.XXXXXX");
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot create output file: ", std::strerror(errno)));
  }
  // Held until the descriptor closes: marks the temporary file as live for other writers'
  // RemoveStaleTemporaryFiles. A new file cannot be locked by anyone else yet.
  flock(fd, LOCK_EX | LOCK_NB);
  fchmod(fd, 0644);
  auto file = std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(temp), fd));
  file->pending_slot_ = RegisterPending(file->temp_path_);
  return file;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) close(fd_);
  if (!committed_) unlink(temp_path_.c_str());
  UnregisterPending(pending_slot_);
}

absl::Status AtomicFile::WriteAt(uint64_t offset, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, offset + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error("write failed");
    }
    done += static_cast<size_t>(n);
  }
  end_ = std::max(end_, offset + bytes.size());
  return absl::OkStatus();
}

absl::Status AtomicFile::Append(std::span<const uint8_t> bytes) { return WriteAt(end_, bytes); }

absl::Status AtomicFile::Truncate(uint64_t size) {
  if (ftruncate(fd_, static_cast<off_t>(size)) != 0) return Error("cannot set the file size");
  end_ = size;
  return absl::OkStatus();
}

absl::Status AtomicFile::Commit() {
  if (committed_) return absl::FailedPreconditionError(absl::StrCat(path_, ": already committed"));
  if (fsync(fd_) != 0) return Error("fsync failed");
  // Renamed before the descriptor (and with it the flock) is released, so that no other writer
  // takes this temporary file for a stale one in between.
  if (rename(temp_path_.c_str(), path_.c_str()) != 0) return Error("cannot rename into place");
  committed_ = true;
  const int close_result = close(fd_);
  fd_ = -1;
  if (close_result != 0) return Error("close failed");
  UnregisterPending(pending_slot_);
  pending_slot_ = -1;
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Append(contents); !s.ok()) return s;
  return (*file)->Commit();
}

}  // namespace pinfer
