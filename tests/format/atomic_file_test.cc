#include "format/atomic_file.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / absl::StrCat("atomic_file_test_", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  int FilesInDir() const {
    return static_cast<int>(std::distance(fs::directory_iterator(dir_), {}));
  }
  fs::path dir_;
};

// What an interrupt handler does: every unfinished atomic write loses its temporary file, and a
// committed one keeps its result.
TEST_F(AtomicFileTest, PendingTemporaryFilesCanBeRemovedFromASignalHandler) {
  auto done = AtomicFile::Create((dir_ / "done.bin").string());
  auto pending = AtomicFile::Create((dir_ / "pending.bin").string());
  ASSERT_TRUE(done.ok() && pending.ok());
  ASSERT_TRUE((*done)->Append("kept").ok());
  ASSERT_TRUE((*done)->Commit().ok());
  ASSERT_TRUE((*pending)->Append("lost").ok());
  ASSERT_TRUE(fs::exists((*pending)->temp_path()));
  RemovePendingTemporaryFiles();
  EXPECT_FALSE(fs::exists((*pending)->temp_path()));
  EXPECT_TRUE(fs::exists(dir_ / "done.bin"));
  EXPECT_EQ(FilesInDir(), 1);
}

// A writer killed with SIGKILL runs no cleanup: its temporary file stays until the next writer of
// the same output removes it. Temporary files of other outputs, and of writers still alive, stay.
TEST_F(AtomicFileTest, TheNextWriterRemovesTheTemporaryFilesOfKilledWriters) {
  const std::string out = (dir_ / "model.pi").string();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto file = AtomicFile::Create(out);
    if (!file.ok() || !(*file)->Append("half an artifact").ok()) _exit(2);
    raise(SIGKILL);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(FilesInDir(), 1);  // the killed writer's model.pi.tmp.XXXXXX
  const fs::path stale = fs::directory_iterator(dir_)->path();
  ASSERT_TRUE(stale.filename().string().starts_with("model.pi.tmp."));

  auto other_output = AtomicFile::Create((dir_ / "model.pi.plan").string());  // another name
  auto live = AtomicFile::Create(out);  // removes the stale file, then makes its own
  ASSERT_TRUE(other_output.ok() && live.ok());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists((*other_output)->temp_path()));

  auto concurrent = AtomicFile::Create(out);  // a second live writer must not remove the first
  ASSERT_TRUE(concurrent.ok());
  EXPECT_TRUE(fs::exists((*live)->temp_path()));
  ASSERT_TRUE((*live)->Append("first").ok());
  ASSERT_TRUE((*live)->Commit().ok());
  EXPECT_TRUE(fs::exists(out));
  EXPECT_TRUE(fs::exists((*concurrent)->temp_path()));
}

}  // namespace
}  // namespace pinfer
