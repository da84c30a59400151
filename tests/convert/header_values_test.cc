// Header values that checksums cannot catch: a .pi whose checksums are all valid but whose header
// declares counts the tensors do not hold, infinite RoPE or norm constants, or token ids beyond
// int32. pi-inspect --verify must call such a file unsound, and pi-run must refuse it with one
// line naming the file, before it allocates anything by those counts.
#include <filesystem>
#include <functional>

#include "format/pi_file.h"
#include "format/pi_writer.h"
#include "gtest/gtest.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

// The bundled stories260K (5 layers) as a .pi, converted once.
const std::string& StoriesPi() {
  static const std::string path = [] {
    const std::string p = ScratchDir("header_values_stories") + "/stories.pi";
    const ToolResult r =
        RunTool("pi-convert", {RepoPath("models/stories260K/stories260K.gguf"), "-o", p, "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

// Rewrites `in` with its metadata edited; every checksum of the result is valid.
void RewriteWithMetadata(const std::string& in, const std::string& out,
                         const std::function<void(Metadata&)>& edit) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(in);
  ASSERT_TRUE(file.ok()) << file.status();
  Metadata metadata = (*file)->metadata();
  edit(metadata);
  std::vector<TensorData> tensors;
  for (const TensorInfo& t : (*file)->tensors()) {
    const std::span<const uint8_t> bytes = (*file)->Data(t);
    tensors.push_back({{t.name, t.dtype, t.shape}, {bytes.begin(), bytes.end()}});
  }
  ASSERT_TRUE(WritePiFile(out, (*file)->kind(), std::move(metadata), tensors).ok());
}

struct HeaderCase {
  const char* name;
  std::function<void(Metadata&)> edit;
  const char* reason;
};
void PrintTo(const HeaderCase& c, std::ostream* os) { *os << c.name; }

std::vector<HeaderCase> Cases() {
  return {
      {"LayerCountOfTwoToTheThirty",
       [](Metadata& m) { m.SetInt("llama.n_layers", int64_t{1} << 30); },
       "n_layers 1073741824 is implausible"},
      {"LayerCountBeyondTheTensors",
       [](Metadata& m) { m.SetInt("llama.n_layers", int64_t{1} << 20); },
       "the header declares 1048576 layers but the tensors are those of 5 layers"},
      {"LayerCountBelowTheTensors", [](Metadata& m) { m.SetInt("llama.n_layers", 3); },
       "the header declares 3 layers but the tensors are those of 5 layers"},
      {"InfiniteRopeTheta",
       [](Metadata& m) { m.SetFloat("llama.rope_theta", std::numeric_limits<double>::infinity()); },
       "rope_theta must be positive and finite, got inf"},
      {"InfiniteRmsEps",
       [](Metadata& m) { m.SetFloat("llama.rms_eps", std::numeric_limits<double>::infinity()); },
       "rms_eps must lie in (0, 1), got inf"},
      {"NanRmsEps",
       [](Metadata& m) { m.SetFloat("llama.rms_eps", std::numeric_limits<double>::quiet_NaN()); },
       "rms_eps must lie in (0, 1), got nan"},
      {"RopeFreqFactorsOfTheWrongSize",
       [](Metadata& m) { m.SetFloatArray("llama.rope_freq_factors", {1.0f, 2.0f, 4.0f}); },
       "rope_freq_factors has 3 entries; RoPE of head_dim 8 needs 4"},
      {"RopeFreqFactorNotPositive",
       [](Metadata& m) { m.SetFloatArray("llama.rope_freq_factors", {1.0f, -2.0f, 4.0f, 8.0f}); },
       "rope_freq_factors must be positive and finite, got -2"},
      {"RopeFreqFactorsNotFloats",
       [](Metadata& m) { m.SetIntArray("llama.rope_freq_factors", {1, 2, 4, 8}); },
       "llama.rope_freq_factors"},
      {"SlidingWindowNegative", [](Metadata& m) { m.SetInt("llama.sliding_window", -3); },
       "sliding_window -3 is implausible"},
      {"TokenIdBeyondInt32",
       [](Metadata& m) { m.SetInt("tokenizer.bos_id", (int64_t{1} << 32) + 1); },
       "'tokenizer.bos_id' 4294967297 is outside the 512-token vocabulary"},
  };
}

class HeaderValuesTest : public ::testing::TestWithParam<HeaderCase> {
 protected:
  std::string Damaged() {
    const std::string path = ScratchDir("header_values") + "/bad.pi";
    RewriteWithMetadata(StoriesPi(), path, GetParam().edit);
    return path;
  }
  static void ExpectOneLine(const ToolResult& r, const std::string& program,
                            const std::string& path) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    ASSERT_FALSE(r.err.empty());
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_TRUE(r.err.starts_with(program + ": error: " + path + ": ")) << r.err;
    EXPECT_NE(r.err.find(GetParam().reason), std::string::npos) << r.err;
  }
};

TEST_P(HeaderValuesTest, PiInspectVerifyCallsTheFileUnsound) {
  const std::string path = Damaged();
  EXPECT_EQ(RunTool("pi-inspect", {path, "-q"}).exit_code, 0) << "the structure is sound";
  ExpectOneLine(RunTool("pi-inspect", {path, "--verify", "-q"}), "pi-inspect", path);
}

TEST_P(HeaderValuesTest, PiRunRefusesTheModelInOneLine) {
  const std::string path = Damaged();
  ExpectOneLine(RunTool("pi-run", {"-m", path, "-p", "Once", "-n", "2", "--temp", "0"}), "pi-run",
                path);
}

INSTANTIATE_TEST_SUITE_P(Table, HeaderValuesTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HeaderValuesTest, TheUndamagedModelVerifies) {
  const ToolResult r = RunTool("pi-inspect", {StoriesPi(), "--verify", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("the file is sound"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pinfer::testing
