// SourceDigests: a source file recorded with the same path, size and modification time keeps its
// recorded digest without being read; any other file is read and digested.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/convert/test_util.h"
#include "tools/prepare/stage_record.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

TEST(StageRecordTest, SourceDigestsReuseTheRecordOfAnUnchangedFileAndReadAnyOther) {
  const std::string dir = testing::ScratchDir("stage_record");
  const std::string path = dir + "/source.bin";
  std::ofstream(path, std::ios::binary) << "the source's bytes";
  const absl::StatusOr<std::string> real = FileDigest(path);
  ASSERT_TRUE(real.ok()) << real.status();

  // Recorded as it is now, under a digest that is not its bytes': the record is trusted.
  ArtifactRecord record;
  record.source_digests = {"feedfacefeedface"};
  record.source_paths = {fs::absolute(path).lexically_normal().string()};
  record.source_sizes = {static_cast<int64_t>(fs::file_size(path))};
  record.source_mtimes_ns = {MtimeNs(path)};
  absl::StatusOr<std::vector<std::string>> digests = SourceDigests({path}, record);
  ASSERT_TRUE(digests.ok()) << digests.status();
  EXPECT_EQ(*digests, std::vector<std::string>{"feedfacefeedface"});

  // Another modification time, another size, another path or no record: the file is read.
  ArtifactRecord touched = record;
  touched.source_mtimes_ns[0] += 1;
  ArtifactRecord resized = record;
  resized.source_sizes[0] += 1;
  ArtifactRecord elsewhere = record;
  elsewhere.source_paths[0] = dir + "/other.bin";
  ArtifactRecord incomplete = record;
  incomplete.source_mtimes_ns.clear();
  for (const std::optional<ArtifactRecord>& existing :
       {std::optional<ArtifactRecord>(touched), std::optional<ArtifactRecord>(resized),
        std::optional<ArtifactRecord>(elsewhere), std::optional<ArtifactRecord>(incomplete),
        std::optional<ArtifactRecord>()}) {
    digests = SourceDigests({path}, existing);
    ASSERT_TRUE(digests.ok()) << digests.status();
    EXPECT_EQ(*digests, std::vector<std::string>{*real});
  }

  // A missing source is an error naming it.
  digests = SourceDigests({dir + "/missing.bin"}, record);
  ASSERT_FALSE(digests.ok());
  EXPECT_NE(std::string(digests.status().message()).find("missing.bin"), std::string::npos);
}

}  // namespace
}  // namespace pinfer
