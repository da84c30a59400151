// --version of every program: exit 0, one line on stdout, the same commit everywhere, and that
// commit is this checkout's HEAD (or "unknown" outside a git checkout). The SIMD part agrees with
// what the CPU kernels themselves dispatch to.
#include "runtime/common/version.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "runtime/cpu/simd_targets.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

using test::ProgramResult;
using test::RunProgram;

std::string Trimmed(const std::string& text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

// HEAD's full hash when the source directory is the top of a git checkout, else "".
std::string SourceHead() {
  const std::string dir = PINFER_SOURCE_DIR;
  const ProgramResult top = RunProgram("git", {"-C", dir, "rev-parse", "--show-toplevel"});
  std::error_code ec;
  if (top.exit_code != 0 || !std::filesystem::equivalent(Trimmed(top.out), dir, ec)) {
    return "";
  }
  const ProgramResult head = RunProgram("git", {"-C", dir, "rev-parse", "HEAD"});
  return head.exit_code == 0 ? Trimmed(head.out) : "";
}

// "pi-run 0.1.0 (commit abc1234-dirty), ..." -> "abc1234-dirty"
std::string CommitOf(const std::string& line) {
  const size_t at = line.find("(commit ");
  if (at == std::string::npos) return "";
  const size_t end = line.find(')', at);
  return line.substr(at + 8, end - at - 8);
}

TEST(VersionTest, EveryProgramPrintsTheCommitOfThisCheckout) {
  const std::string head = SourceHead();
  std::vector<std::string> programs = absl::StrSplit(PINFER_PROGRAMS, ':');
  ASSERT_GE(programs.size(), 7u);
  for (const std::string& path : programs) {
    const std::string name = std::filesystem::path(path).filename();
    const ProgramResult run = RunProgram(path, {"--version"});
    EXPECT_EQ(run.exit_code, 0) << name << ": " << run.err;
    EXPECT_EQ(run.err, "") << name;
    EXPECT_TRUE(absl::StartsWith(run.out, absl::StrCat(name, " ")) && run.out.ends_with(")\n") &&
                run.out.find('\n') == run.out.size() - 1)
        << name << " printed: " << run.out;
    EXPECT_TRUE(absl::StrContains(run.out, ", SIMD: ")) << run.out;
    EXPECT_TRUE(absl::StrContains(run.out, ", CUDA: ")) << run.out;
    // Every program shows the commit this test binary was built with...
    EXPECT_EQ(CommitOf(run.out), BuildCommit()) << name << " printed: " << run.out;
  }
  // ...which is HEAD: a stale header (a commit since the last rebuild) fails here.
  std::string commit(BuildCommit());
  if (commit.ends_with("-dirty")) commit.resize(commit.size() - 6);
  if (head.empty()) {
    EXPECT_EQ(commit, "unknown");
  } else {
    EXPECT_GE(commit.size(), 7u) << commit;
    EXPECT_TRUE(absl::StartsWith(head, commit)) << "built from " << commit << ", HEAD is " << head;
  }
}

TEST(VersionTest, MakePredictorPrintsTheToolsVersion) {
  const ProgramResult run = RunProgram(
      "env", {absl::StrCat("PINFER_BIN=", PINFER_BINARY_DIR), PINFER_MAKE_PREDICTOR, "--version"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(absl::StartsWith(run.out, "pi-profile ")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "pi-train-predictor ")) << run.out;
  EXPECT_EQ(CommitOf(run.out), BuildCommit()) << run.out;
}

TEST(VersionTest, CudaArchitecturesAreNamedByTheCodeTheyHold) {
  EXPECT_EQ(DescribeCudaArchitectures("90-real,80-virtual"), "sm_90, compute_80");
  EXPECT_EQ(DescribeCudaArchitectures("90a-real;80-virtual"), "sm_90a, compute_80");
  EXPECT_EQ(DescribeCudaArchitectures("86"), "sm_86, compute_86");
  EXPECT_EQ(DescribeCudaArchitectures("native"), "native");
  EXPECT_EQ(DescribeCudaArchitectures(""), "none");
}

// The list comes from the kernels' own Highway definitions: every target the dispatcher can pick
// on this CPU is in it, and the selected one is the dispatcher's first choice.
TEST(VersionTest, SimdTargetsAreTheKernels) {
  const std::vector<std::string> compiled = CompiledSimdTargets();
  const std::vector<std::string> runnable = cpu::SupportedSimdTargets();
  ASSERT_FALSE(runnable.empty());
  for (const std::string& name : runnable) {
    EXPECT_NE(std::find(compiled.begin(), compiled.end(), name), compiled.end()) << name;
  }
  EXPECT_EQ(SelectedSimdTarget(), runnable.front());
  // SSSE3 is disabled for the kernels (runtime/cpu/CMakeLists.txt): not in the list either.
  EXPECT_EQ(std::find(compiled.begin(), compiled.end(), "SSSE3"), compiled.end());
}

}  // namespace
}  // namespace pinfer
