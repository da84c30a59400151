// pi-prepare's bad inputs: one line "pi-prepare: error: ..." naming the flag or file, a non-zero
// exit, nothing on stdout, and no artifact of a stage that did not run.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "tests/convert/test_util.h"
#include "tests/prepare/prepare_test_util.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using testing::RunTool;
using testing::ToolResult;

void ExpectOneLineError(const ToolResult& r, const std::string& mention) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_TRUE(absl::StartsWith(r.err, "pi-prepare: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, mention)) << r.err << " lacks " << mention;
}

TEST(PiPrepareErrorsTest, BadInputsGiveOneLine) {
  const std::string dir = testing::ScratchDir("errors");
  // A dataset that is not there: refused before any stage.
  ExpectOneLineError(RunTool("pi-prepare", prepare_test::PrepareArgs(
                                               dir, {"--dataset", dir + "/missing.txt", "-q"})),
                     "--dataset " + dir + "/missing.txt: no such file");
  EXPECT_TRUE(fs::is_empty(dir));
  // A source of no known format.
  ExpectOneLineError(RunTool("pi-prepare", {"-m", prepare_test::Dataset(), "--dataset",
                                            prepare_test::Dataset(), "-o", dir, "-q"}),
                     "unrecognised model format");
  // A budget below the minimum working set: refused once the model is known, before profiling.
  ExpectOneLineError(RunTool("pi-prepare", prepare_test::PrepareArgs(dir, {"--vram", "1M", "-q"})),
                     "--vram 1M: the VRAM budget of 1.00 MiB is below the minimum working set");
  EXPECT_TRUE(fs::exists(dir + "/model_q80.pi"));
  EXPECT_FALSE(fs::exists(dir + "/model_q80.profile.pi"));
}

}  // namespace
}  // namespace pinfer
