#include "tests/export/export_test_util.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "format/dtype.h"
#include "gtest/gtest.h"

namespace pinfer::testing {

test::ProgramResult Run(const char* program, const std::vector<std::string>& args) {
  return test::RunProgram(program, args);
}

std::string BundledText() { return test::SourcePath("tests/data/text/tinystories_valid_head.txt"); }

void ExpectOneLineError(const test::ProgramResult& r, const std::string& program,
                        const std::string& mention) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, program + ": error: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, mention)) << r.err << " lacks " << mention;
}

std::unique_ptr<PiFile> OpenPi(const std::string& path) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

void ExpectSameTensors(const PiFile& a, const PiFile& b) {
  EXPECT_EQ(a.tensors().size(), b.tensors().size());
  for (const TensorInfo& t : a.tensors()) {
    const TensorInfo* u = b.Find(t.name);
    ASSERT_NE(u, nullptr) << t.name << " is missing from " << b.path();
    EXPECT_EQ(t.dtype, u->dtype) << t.name;
    EXPECT_EQ(t.shape, u->shape) << t.name;
    const std::span<const uint8_t> x = a.Data(t), y = b.Data(*u);
    EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end()))
        << t.name << " differs between " << a.path() << " and " << b.path();
  }
}

}  // namespace pinfer::testing
