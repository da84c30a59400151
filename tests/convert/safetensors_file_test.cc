// The safetensors header parser on valid files and on a table of damaged ones.
#include "tools/convert/safetensors_file.h"

#include <cstring>
#include <functional>

#include "format/byte_io.h"
#include "gtest/gtest.h"

namespace pinfer::testing {
namespace {

// A file with header `json` (padded to 8 as the Rust writer does) followed by `data_bytes` bytes.
std::vector<uint8_t> File(std::string json, size_t data_bytes) {
  while (json.size() % 8 != 0) json.push_back(' ');
  ByteWriter w;
  w.Put<uint64_t>(json.size());
  w.PutBytes(json.data(), json.size());
  for (size_t i = 0; i < data_bytes; ++i) w.Put<uint8_t>(static_cast<uint8_t>(i));
  return w.bytes();
}

const char kValid[] = R"({"__metadata__":{"format":"pt"},)"
                      R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},)"
                      R"("c":{"dtype":"I64","shape":[],"data_offsets":[32,40]}})";

TEST(SafetensorsFile, ParsesAValidFile) {
  const std::vector<uint8_t> bytes = File(kValid, 40);
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Parse(bytes, "m.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors().size(), 3u);
  const SafetensorsTensor* a = f->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(a->size, 24u);
  const uint64_t header = bytes.size() - 40;
  EXPECT_EQ(a->offset, header);
  EXPECT_EQ(f->Data(*f->Find("b"))[0], 24);
  EXPECT_EQ(f->Find("c")->shape.size(), 0u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(SafetensorsDType("BF16"), DType::kBF16);
  EXPECT_EQ(SafetensorsDType("I64"), std::nullopt);
}

struct Damage {
  const char* name;
  std::function<std::vector<uint8_t>()> make;
  const char* reason;
};
void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

std::vector<uint8_t> Tensor(const std::string& entry, size_t data = 64) {
  return File(R"({"t":)" + entry + "}", data);
}

std::vector<Damage> Damages() {
  return {
      {"Empty", [] { return std::vector<uint8_t>(); }, "truncated"},
      {"HugeHeaderLength",
       [] {
         std::vector<uint8_t> b = File(kValid, 40);
         const uint64_t n = 1ull << 40;
         std::memcpy(b.data(), &n, 8);
         return b;
       },
       "implausible"},
      {"HeaderPastEnd",
       [] {
         std::vector<uint8_t> b = File(kValid, 40);
         return std::vector<uint8_t>(b.begin(), b.begin() + 30);
       },
       "runs past the end"},
      {"NotAnObject", [] { return File("[1, 2]", 0); }, "not a JSON object"},
      {"BadJson", [] { return File(R"({"a": {"dtype": )", 0); }, "not valid JSON"},
      {"EntryNotObject", [] { return Tensor("5"); }, "is not an object"},
      {"MissingField", [] { return Tensor(R"({"dtype":"F32","shape":[1]})"); },
       "lacks dtype, shape or data_offsets"},
      {"UnknownDType", [] { return Tensor(R"({"dtype":"F12","shape":[1],"data_offsets":[0,4]})"); },
       "unknown dtype 'F12'"},
      {"NegativeDim", [] { return Tensor(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})"); },
       "invalid shape"},
      {"StringDim", [] { return Tensor(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"); },
       "invalid shape"},
      {"ReversedOffsets",
       [] { return Tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})"); },
       "invalid data_offsets"},
      {"ThreeOffsets",
       [] { return Tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})"); },
       "invalid data_offsets"},
      {"SizeMismatch", [] { return Tensor(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})"); },
       "holds 8 bytes but F32 3 elements need 12"},
      {"ShapeOverflow",
       [] {
         return Tensor(
             R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})");
       },
       "too large"},
      {"PastEnd", [] { return Tensor(R"({"dtype":"F32","shape":[32],"data_offsets":[0,128]})"); },
       "truncated: tensor 't'"},
      {"Overlap",
       [] {
         return File(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                     R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                     32);
       },
       "overlap"},
  };
}

class SafetensorsDamageTest : public ::testing::TestWithParam<Damage> {};

TEST_P(SafetensorsDamageTest, IsRejectedWithTheFileAndTheReason) {
  const std::vector<uint8_t> bytes = GetParam().make();
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Parse(bytes, "bad.safetensors");
  ASSERT_FALSE(f.ok());
  const std::string message(f.status().message());
  EXPECT_TRUE(message.starts_with("bad.safetensors: ")) << message;
  EXPECT_NE(message.find(GetParam().reason), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Table, SafetensorsDamageTest, ::testing::ValuesIn(Damages()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SafetensorsFile, EveryTruncationIsRejected) {
  const std::vector<uint8_t> valid = File(kValid, 40);
  for (size_t n = 0; n < valid.size(); ++n) {
    std::vector<uint8_t> cut(valid.begin(), valid.begin() + static_cast<long>(n));
    EXPECT_FALSE(SafetensorsFile::Parse(cut, "cut.safetensors").ok()) << n;
  }
}

}  // namespace
}  // namespace pinfer::testing
