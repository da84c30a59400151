#include "format/pi_file.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "format/atomic_file.h"
#include "format/checksum.h"
#include "format/pi_writer.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

class PiFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("pi_file_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // A small artifact: three tensors of different dtypes, one big enough to be page-aligned.
  std::string WriteSample(const std::string& name) {
    Metadata m;
    m.SetString("general.architecture", "llama");
    m.SetInt("llama.dim", 4);
    m.SetString("provenance.arguments", "pi-convert x -o " + name);
    std::vector<float> a(8);
    std::iota(a.begin(), a.end(), 1.0f);
    std::vector<int32_t> b = {7, -7, 42};
    std::vector<uint8_t> big((1 << 20) + 3, 0xAB);
    std::vector<TensorData> tensors = {MakeTensor("a", {2, 4}, a), MakeTensor("b", {3}, b),
                                       MakeTensor("big", {big.size()}, big)};
    const std::string path = Path(name);
    EXPECT_TRUE(WritePiFile(path, ArtifactKind::kModel, m, tensors).ok());
    return path;
  }

  std::vector<uint8_t> ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  fs::path dir_;
};

TEST_F(PiFileTest, RoundTripsMetadataAndTensors) {
  const std::string path = WriteSample("m.pi");
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const PiFile& f = **file;
  EXPECT_EQ(f.kind(), ArtifactKind::kModel);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* a = f.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape, (std::vector<uint64_t>{2, 4}));
  EXPECT_EQ(a->rows(), 2u);
  EXPECT_EQ(a->offset % kPiTensorAlignment, 0u);
  EXPECT_EQ(f.DataAs<float>(*a)[7], 8.0f);
  EXPECT_EQ(f.DataAs<int32_t>(*f.Find("b"))[2], 42);
  EXPECT_EQ(f.Find("big")->offset % kPiPageAlignment, 0u);
  EXPECT_TRUE(f.VerifyAll().ok());
  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(f.Get("missing").status().message(), path + ": tensor 'missing' is missing");
  const uint64_t shape[] = {4, 2};
  EXPECT_FALSE(f.GetChecked("a", shape).ok());
}

TEST_F(PiFileTest, StreamingWriterAcceptsPiecesInAnyTensorOrder) {
  Metadata m;
  m.SetInt("x", 1);
  std::vector<TensorSpec> specs = {{"first", DType::kF32, {100}}, {"second", DType::kU8, {10}}};
  auto writer = PiWriter::Create(Path("s.pi"), ArtifactKind::kProfile, m, specs);
  ASSERT_TRUE(writer.ok()) << writer.status();
  std::vector<uint8_t> second(10, 5);
  ASSERT_TRUE((*writer)->Append("second", second.data(), 4).ok());
  std::vector<float> first(100, 2.5f);
  ASSERT_TRUE((*writer)->Append("first", first.data(), 200).ok());
  ASSERT_TRUE((*writer)->Append("second", second.data() + 4, 6).ok());
  // Incomplete: Commit must refuse and nothing may appear.
  EXPECT_FALSE((*writer)->Commit().ok());
  EXPECT_FALSE(fs::exists(Path("s.pi")));
  ASSERT_TRUE((*writer)->Append("first", first.data() + 50, 200).ok());
  EXPECT_FALSE((*writer)->Append("first", first.data(), 4).ok());  // overflow
  ASSERT_TRUE((*writer)->Commit().ok());
  auto file = PiFile::Open(Path("s.pi"), {.expected_kind = ArtifactKind::kProfile});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->VerifyAll().ok());
  EXPECT_EQ((*file)->DataAs<float>(*(*file)->Find("first"))[99], 2.5f);
}

TEST_F(PiFileTest, AbandonedWriterLeavesNoFile) {
  {
    auto writer = PiWriter::Create(Path("gone.pi"), ArtifactKind::kModel, Metadata(),
                                   {{"t", DType::kF32, {4}}});
    ASSERT_TRUE(writer.ok());
    float v[4] = {};
    ASSERT_TRUE((*writer)->Write("t", v, sizeof(v)).ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_)) << "a temporary file was left behind";
}

TEST_F(PiFileTest, WriterRejectsBadSpecs) {
  EXPECT_FALSE(PiWriter::Create(Path("x.pi"), ArtifactKind::kModel, Metadata(),
                                {{"q", DType::kQ4_0, {2, 48}}})
                   .ok());  // row not a multiple of 32
  EXPECT_FALSE(PiWriter::Create(Path("x.pi"), ArtifactKind::kModel, Metadata(),
                                {{"t", DType::kF32, {1}}, {"t", DType::kF32, {1}}})
                   .ok());
  EXPECT_FALSE(
      PiWriter::Create(Path("x.pi"), ArtifactKind::kModel, Metadata(), {{"t", DType::kF32, {}}})
          .ok());
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(PiFileTest, WrongKindIsRejectedWithAClearMessage) {
  const std::string path = WriteSample("m.pi");
  auto file = PiFile::Open(path, {.expected_kind = ArtifactKind::kPlan});
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(), path + ": is a model artifact, expected a plan");
}

TEST_F(PiFileTest, ContentDigestIgnoresProvenanceOnly) {
  const std::string p1 = WriteSample("one.pi");
  const std::string p2 = WriteSample("two.pi");  // differs only in provenance.arguments
  auto f1 = PiFile::Open(p1);
  auto f2 = PiFile::Open(p2);
  ASSERT_TRUE(f1.ok() && f2.ok());
  EXPECT_NE((*f1)->header().header_checksum, (*f2)->header().header_checksum);
  EXPECT_EQ((*f1)->ContentDigest(), (*f2)->ContentDigest());
  EXPECT_EQ((*f1)->ContentDigestHex().size(), 16u);
}

// --- Corruption table -----------------------------------------------------------------------

// Locates index fields in an image and re-signs the header after a deliberate edit, so that the
// structural checks behind the checksum are exercised too.
struct Image {
  std::vector<uint8_t> bytes;
  PiHeader header() const {
    PiHeader h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    return h;
  }
  void SetHeader(const PiHeader& h) { std::memcpy(bytes.data(), &h, sizeof(h)); }
  void Resign() {
    PiHeader h = header();
    StreamingChecksum c;
    c.Update(bytes.data(), offsetof(PiHeader, header_checksum));
    c.Update(bytes.data() + h.metadata_offset, h.metadata_size + h.index_size);
    h.header_checksum = c.Digest();
    SetHeader(h);
  }
  // Byte position of tensor `i`'s field: 0 dtype, 1 n_dims, 2 first dim, 3 offset, 4 size.
  size_t Field(int tensor, int field) const {
    size_t pos = header().index_offset;
    for (int t = 0;; ++t) {
      uint16_t name_len;
      std::memcpy(&name_len, bytes.data() + pos, 2);
      pos += 2 + name_len;
      uint32_t n_dims;
      std::memcpy(&n_dims, bytes.data() + pos + 4, 4);
      if (t == tensor) {
        switch (field) {
          case 0:
            return pos;
          case 1:
            return pos + 4;
          case 2:
            return pos + 8;
          case 3:
            return pos + 8 + 8 * n_dims;
          default:
            return pos + 16 + 8 * n_dims;
        }
      }
      pos += 8 + 8 * n_dims + 24;
    }
  }
  template <typename T>
  void Put(size_t pos, T value) {
    std::memcpy(bytes.data() + pos, &value, sizeof(T));
  }
  template <typename T>
  T GetAt(size_t pos) const {
    T v;
    std::memcpy(&v, bytes.data() + pos, sizeof(T));
    return v;
  }
};

TEST_F(PiFileTest, CorruptionTable) {
  const std::string path = WriteSample("good.pi");
  const Image good{ReadBytes(path)};
  ASSERT_TRUE(PiFile::FromBytes(good.bytes, "good").ok());

  struct Case {
    std::string name;
    std::function<void(Image&)> corrupt;
    std::string expected_message;  // substring
  };
  const std::vector<Case> cases = {
      {"empty", [](Image& im) { im.bytes.clear(); }, "smaller than the 128-byte .pi header"},
      {"truncated header", [](Image& im) { im.bytes.resize(100); }, "truncated"},
      {"truncated data", [](Image& im) { im.bytes.resize(im.bytes.size() - 1); }, "truncated"},
      {"trailing bytes", [](Image& im) { im.bytes.push_back(0); }, "trailing bytes"},
      {"wrong magic", [](Image& im) { im.bytes[0] = 'G'; }, "wrong magic"},
      {"future major version",
       [](Image& im) {
         PiHeader h = im.header();
         h.version_major = 2;
         im.SetHeader(h);
       },
       "version 2.0 is not supported"},
      {"unknown kind",
       [](Image& im) {
         PiHeader h = im.header();
         h.kind = 9;
         im.SetHeader(h);
         im.Resign();
       },
       "unknown artifact kind 9"},
      {"flipped metadata byte", [](Image& im) { im.bytes[im.header().metadata_offset + 3] ^= 1; },
       "header checksum mismatch"},
      {"flipped index byte", [](Image& im) { im.bytes[im.header().index_offset + 5] ^= 1; },
       "header checksum mismatch"},
      {"unsupported dtype",
       [](Image& im) {
         im.Put<uint32_t>(im.Field(0, 0), 77);
         im.Resign();
       },
       "unsupported dtype 77"},
      {"inconsistent shape",
       [](Image& im) {
         im.Put<uint64_t>(im.Field(0, 2), 3);
         im.Resign();
       },
       "needs 48"},
      {"misaligned offset",
       [](Image& im) {
         im.Put<uint64_t>(im.Field(0, 3), im.GetAt<uint64_t>(im.Field(0, 3)) + 4);
         im.Resign();
       },
       "not 64-byte aligned"},
      {"offset past the end",
       [](Image& im) {
         im.Put<uint64_t>(im.Field(2, 3), im.bytes.size() / 64 * 64);
         im.Resign();
       },
       "outside the data region"},
      {"overlapping tensors",
       [](Image& im) {
         im.Put<uint64_t>(im.Field(1, 3), im.GetAt<uint64_t>(im.Field(0, 3)));
         im.Resign();
       },
       "overlap"},
      {"region sizes out of bounds",
       [](Image& im) {
         PiHeader h = im.header();
         h.index_size = UINT64_MAX - 10;
         im.SetHeader(h);
       },
       "out of bounds"},
  };
  for (const Case& c : cases) {
    Image image = good;
    c.corrupt(image);
    auto file = PiFile::FromBytes(image.bytes, "bad.pi");
    ASSERT_FALSE(file.ok()) << c.name;
    EXPECT_NE(file.status().message().find(c.expected_message), std::string::npos)
        << c.name << ": " << file.status().message();
    EXPECT_EQ(file.status().message().rfind("bad.pi: ", 0), 0u) << c.name;
  }
}

TEST_F(PiFileTest, DataCorruptionIsFoundByVerify) {
  const std::string path = WriteSample("good.pi");
  Image image{ReadBytes(path)};
  image.bytes[image.GetAt<uint64_t>(image.Field(2, 3)) + 1000] ^= 0x10;
  auto file = PiFile::FromBytes(image.bytes, "bad.pi");
  ASSERT_TRUE(file.ok()) << "data damage is found on demand, not at open";
  absl::Status verified = (*file)->VerifyAll();
  EXPECT_EQ(verified.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(verified.message().find("tensor 'big' checksum mismatch"), std::string::npos);
  EXPECT_TRUE((*file)->VerifyTensor(*(*file)->Find("a")).ok());
}

TEST_F(PiFileTest, OpenReportsMissingFiles) {
  auto file = PiFile::Open(Path("nope.pi"));
  EXPECT_EQ(file.status().message(), Path("nope.pi") + ": no such file");
}

}  // namespace
}  // namespace pinfer
