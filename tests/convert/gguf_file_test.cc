// The GGUF reader on valid files and on a table of damaged ones.
#include "tools/convert/gguf_file.h"

#include <cstring>
#include <functional>

#include "gtest/gtest.h"
#include "tests/convert/gguf_builder.h"
#include "tests/convert/test_util.h"

namespace pinfer::testing {
namespace {

std::vector<uint8_t> F32Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

GgufBuilder ValidBuilder() {
  GgufBuilder b;
  b.AddString("general.architecture", "llama");
  b.AddUint32("llama.block_count", 2);
  b.AddInt32("llama.signed", -3);
  b.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.AddBool("tokenizer.ggml.add_bos_token", false);
  b.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  b.AddFloat32Array("tokenizer.ggml.scores", {0.0f, -1.0f, -2.0f});
  b.AddInt32Array("tokenizer.ggml.token_type", {2, 1, 1});
  b.AddTensor("a.weight", {4, 2}, 0, F32Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  b.AddTensor("b.weight", {32}, 8, std::vector<uint8_t>(34, 1));  // one Q8_0 block
  return b;
}

TEST(GgufFile, ParsesAValidFile) {
  const std::vector<uint8_t> bytes = ValidBuilder().Build();
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes, "x.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_FALSE(f->powerinfer_magic());
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_EQ(*f->GetUint("llama.block_count"), 2u);
  EXPECT_EQ(*f->GetInt("llama.block_count"), 2);
  EXPECT_EQ(*f->GetInt("llama.signed"), -3);
  EXPECT_FALSE(f->GetUint("llama.signed").ok());
  EXPECT_FLOAT_EQ(static_cast<float>(*f->GetFloat("llama.attention.layer_norm_rms_epsilon")),
                  1e-5f);
  EXPECT_EQ(*f->GetFloat("llama.block_count"), 2.0);
  EXPECT_FALSE(*f->GetBool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(*f->GetStringArray("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"<unk>", "a", "b"}));
  EXPECT_EQ(*f->GetFloatArray("tokenizer.ggml.scores"), (std::vector<double>{0, -1, -2}));
  EXPECT_EQ(*f->GetIntArray("tokenizer.ggml.token_type"), (std::vector<int64_t>{2, 1, 1}));
  absl::Status wrong = f->GetString("llama.block_count").status();
  EXPECT_EQ(wrong.message(), "x.gguf: metadata 'llama.block_count' is u32, expected string");
  EXPECT_EQ(f->GetUint("missing").status().message(), "x.gguf: metadata 'missing' is missing");

  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo& a = f->tensors()[0];
  EXPECT_EQ(a.name, "a.weight");
  EXPECT_EQ(a.ne, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a.Shape(), (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(a.size, 32u);
  EXPECT_EQ(a.offset % 32, 0u);
  EXPECT_EQ(a.offset, f->data_offset());
  float values[8];
  std::memcpy(values, f->TensorData(a).data(), 32);
  EXPECT_EQ(values[5], 6.0f);
  const GgufTensorInfo* b = f->FindTensor("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size, 34u);
  EXPECT_EQ(b->offset, f->data_offset() + 32);
  EXPECT_EQ(f->TensorData(*b)[33], 1);
}

TEST(GgufFile, HonoursAlignmentAndPowerInferMagic) {
  GgufBuilder b = ValidBuilder();
  b.AddUint32("general.alignment", 64);
  b.set_magic("PWRI");
  b.set_version(2);
  const std::vector<uint8_t> bytes = b.Build(64);
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes, "p.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->powerinfer_magic());
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->FindTensor("b.weight")->offset, f->data_offset() + 64);
}

struct Damage {
  const char* name;
  std::function<std::vector<uint8_t>()> make;
  const char* reason;  // expected in the message
};

void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

std::vector<uint8_t> Patched(std::vector<uint8_t> bytes, size_t offset, std::vector<uint8_t> with) {
  std::copy(with.begin(), with.end(), bytes.begin() + static_cast<long>(offset));
  return bytes;
}

template <typename T>
std::vector<uint8_t> Le(T v) {
  std::vector<uint8_t> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}

// Offset of the first tensor info (right after the metadata) in ValidBuilder's output.
size_t TensorInfoOffset() {
  const std::vector<uint8_t> bytes = ValidBuilder().Build();
  const std::string name = "a.weight";
  auto it = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
  return static_cast<size_t>(it - bytes.begin()) - 8;  // the u64 length before the name
}

std::vector<Damage> Damages() {
  const std::vector<uint8_t> valid = ValidBuilder().Build();
  const size_t info =
      TensorInfoOffset();  // "a.weight": len(8) name(8) n_dims(4) ne(16) type(4) off(8)
  return {
      {"Empty", [] { return std::vector<uint8_t>(); }, "truncated"},
      {"HeaderOnly", [=] { return std::vector<uint8_t>(valid.begin(), valid.begin() + 10); },
       "truncated"},
      {"WrongMagic",
       [=] {
         return Patched(valid, 0, {'G', 'G', 'U', 'X'});
       },
       "wrong magic"},
      {"Version1", [=] { return Patched(valid, 4, Le<uint32_t>(1)); },
       "version 1 is not supported"},
      {"Version4", [=] { return Patched(valid, 4, Le<uint32_t>(4)); },
       "version 4 is not supported"},
      {"BigEndian", [=] { return Patched(valid, 4, Le<uint32_t>(0x03000000)); }, "big-endian"},
      {"HugeTensorCount", [=] { return Patched(valid, 8, Le<uint64_t>(1ull << 60)); },
       "tensor count"},
      {"HugeMetadataCount", [=] { return Patched(valid, 16, Le<uint64_t>(1ull << 40)); },
       "metadata count"},
      {"KeyLengthPastEnd", [=] { return Patched(valid, 24, Le<uint64_t>(1ull << 50)); },
       "truncated in metadata entry 0"},
      {"UnknownValueType",
       [] {
         GgufBuilder b = ValidBuilder();
         b.AddRaw("x", 13, {0});
         return b.Build();
       },
       "unknown type 13"},
      {"NestedArray",
       [] {
         GgufBuilder b = ValidBuilder();
         std::vector<uint8_t> v = Le<uint32_t>(9);
         for (uint8_t x : Le<uint64_t>(0)) v.push_back(x);
         b.AddRaw("x", 9, v);
         return b.Build();
       },
       "nested array"},
      {"ArrayCountPastEnd",
       [] {
         GgufBuilder b = ValidBuilder();
         std::vector<uint8_t> v = Le<uint32_t>(6);
         for (uint8_t x : Le<uint64_t>(1ull << 40)) v.push_back(x);
         b.AddRaw("x", 9, v);
         return b.Build();
       },
       "more than the file holds"},
      {"BadBool",
       [] {
         GgufBuilder b = ValidBuilder();
         b.AddRaw("x", 7, {2});
         return b.Build();
       },
       "invalid value"},
      {"DuplicateKey",
       [] {
         GgufBuilder b = ValidBuilder();
         b.AddUint32("llama.block_count", 3);
         return b.Build();
       },
       "appears twice"},
      {"AlignmentNotPowerOfTwo",
       [] {
         GgufBuilder b = ValidBuilder();
         b.AddUint32("general.alignment", 48);
         return b.Build();
       },
       "power of two"},
      {"ZeroDims", [=] { return Patched(valid, info + 16, Le<uint32_t>(0)); }, "0 dimensions"},
      {"FiveDims", [=] { return Patched(valid, info + 16, Le<uint32_t>(5)); }, "5 dimensions"},
      {"ZeroDimension", [=] { return Patched(valid, info + 20, Le<uint64_t>(0)); },
       "invalid dimension 0"},
      {"UnknownGgmlType", [=] { return Patched(valid, info + 36, Le<uint32_t>(99)); },
       "unknown ggml type 99"},
      {"RowNotWholeBlocks", [=] { return Patched(valid, info + 36, Le<uint32_t>(8)); },
       "not a multiple of Q8_0's 32-element block"},
      {"MisalignedOffset", [=] { return Patched(valid, info + 40, Le<uint64_t>(4)); },
       "not 32-byte aligned"},
      {"TensorPastEnd", [=] { return Patched(valid, info + 40, Le<uint64_t>(1ull << 40)); },
       "beyond the end of the file"},
      {"HugeDimension", [=] { return Patched(valid, info + 20, Le<uint64_t>(1ull << 62)); },
       "too large"},
      {"Truncated", [=] { return std::vector<uint8_t>(valid.begin(), valid.end() - 40); },
       "beyond the end of the file"},
      {"OverlappingTensors",
       [] {
         GgufBuilder b = ValidBuilder();
         std::vector<uint8_t> bytes = b.Build();
         const std::string name = "b.weight";
         auto it = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
         const size_t at = static_cast<size_t>(it - bytes.begin()) + 8 + 4 + 8 + 4;  // its offset
         return Patched(bytes, at, Le<uint64_t>(0));
       },
       "overlap"},
      {"DuplicateTensor",
       [] {
         GgufBuilder b = ValidBuilder();
         b.AddTensor("a.weight", {4}, 0, std::vector<uint8_t>(16, 0));
         return b.Build();
       },
       "'a.weight' appears twice"},
  };
}

class GgufDamageTest : public ::testing::TestWithParam<Damage> {};

TEST_P(GgufDamageTest, IsRejectedWithTheFileAndTheReason) {
  const std::vector<uint8_t> bytes = GetParam().make();
  absl::StatusOr<GgufFile> f = GgufFile::Parse(bytes, "bad.gguf");
  ASSERT_FALSE(f.ok()) << GetParam().name;
  const std::string message(f.status().message());
  EXPECT_TRUE(message.starts_with("bad.gguf: ")) << message;
  EXPECT_NE(message.find(GetParam().reason), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Table, GgufDamageTest, ::testing::ValuesIn(Damages()),
                         [](const auto& info) { return std::string(info.param.name); });

// Every truncation of a valid file (short of the last tensor's end; what follows is padding) is
// rejected, never read past its end.
TEST(GgufFile, EveryTruncationIsRejected) {
  const std::vector<uint8_t> valid = ValidBuilder().Build();
  absl::StatusOr<GgufFile> f = GgufFile::Parse(valid, "valid.gguf");
  ASSERT_TRUE(f.ok());
  const size_t end = f->FindTensor("b.weight")->offset + f->FindTensor("b.weight")->size;
  for (size_t n = 0; n < end; ++n) {
    std::vector<uint8_t> cut(valid.begin(), valid.begin() + static_cast<long>(n));
    EXPECT_FALSE(GgufFile::Parse(cut, "cut.gguf").ok()) << n;
  }
}

}  // namespace
}  // namespace pinfer::testing
