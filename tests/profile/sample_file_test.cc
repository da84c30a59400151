// The sample file container: round trips in f16 and f32, frames and their index, and damage of
// every kind (truncation, flipped bytes in a frame, the index, the header; wrong magic, trailing
// bytes, another model) detected with an error naming the file.
#include "format/sample_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "format/checksum.h"
#include "format/metadata.h"
#include "format/half.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

constexpr char kDigest[] = "00112233445566aa";

// What was written, to compare with what is read.
struct Written {
  int64_t layer;
  int32_t token;
  std::vector<float> input;
  std::vector<uint8_t> mask;
};

class SampleFileTest : public ::testing::Test {
 protected:
  SampleFileSpec Spec(DType dtype = DType::kF16) const {
    SampleFileSpec spec;
    spec.model_digest = kDigest;
    spec.n_layers = 3;
    spec.dim = 24;
    spec.n_ff = 45;  // not a multiple of 8: the last mask byte is padded
    spec.input_dtype = dtype;
    spec.extra.SetString("samples.fire_rule", "nonzero");
    return spec;
  }

  // Writes `per_layer` samples to each layer, interleaved as the profiler does (token by token).
  std::vector<Written> WriteFile(const std::string& path, const SampleFileSpec& spec,
                                 int64_t per_layer, const SampleWriterOptions& options) {
    absl::StatusOr<std::unique_ptr<SampleFileWriter>> writer =
        SampleFileWriter::Create(path, spec, options);
    EXPECT_TRUE(writer.ok()) << writer.status();
    if (!writer.ok()) return {};
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::vector<Written> written;
    for (int64_t t = 0; t < per_layer; ++t) {
      for (int64_t l = 0; l < spec.n_layers; ++l) {
        Written w{l, static_cast<int32_t>(rng() % 1000), {}, {}};
        for (int64_t i = 0; i < spec.dim; ++i) w.input.push_back(normal(rng));
        w.mask.resize(static_cast<size_t>(spec.mask_bytes()));
        for (uint8_t& b : w.mask) b = static_cast<uint8_t>(rng());
        EXPECT_TRUE((*writer)->Add(l, w.token, w.input, w.mask).ok());
        // The reader sees padding bits cleared.
        w.mask.back() &= static_cast<uint8_t>((1u << (spec.n_ff % 8)) - 1);
        written.push_back(std::move(w));
      }
    }
    EXPECT_FALSE(fs::exists(path)) << "visible before Commit";
    EXPECT_TRUE((*writer)->Commit().ok());
    return written;
  }

  std::string Path(const std::string& name) const {
    return (fs::path(test::ScratchDir()) / name).string();
  }

  static std::vector<uint8_t> Bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }
  static void Put(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }

  static void ExpectError(const absl::Status& status, std::initializer_list<const char*> parts) {
    ASSERT_FALSE(status.ok());
    for (const char* part : parts) {
      EXPECT_TRUE(absl::StrContains(status.message(), part))
          << status.message() << " lacks " << part;
    }
  }
};

TEST_F(SampleFileTest, RoundTripsInF16AndF32) {
  for (DType dtype : {DType::kF16, DType::kF32}) {
    const std::string path = Path(absl::StrCat("round_trip_", Sv(DTypeName(dtype)), ".zst"));
    SampleWriterOptions options;
    options.max_frame_samples = 7;  // many frames: 20 samples per layer in 3 frames each
    const std::vector<Written> written = WriteFile(path, Spec(dtype), 20, options);
    absl::StatusOr<std::unique_ptr<SampleFileReader>> reader =
        SampleFileReader::Open(path, kDigest);
    ASSERT_TRUE(reader.ok()) << reader.status();
    const SampleFileReader& r = **reader;
    EXPECT_EQ(r.n_layers(), 3);
    EXPECT_EQ(r.dim(), 24);
    EXPECT_EQ(r.n_ff(), 45);
    EXPECT_EQ(r.spec().input_dtype, dtype);
    EXPECT_EQ(*r.metadata().GetString("samples.fire_rule"), "nonzero");
    EXPECT_EQ(r.frames().size(), 9u);
    ASSERT_TRUE(r.VerifyAll().ok());
    for (int64_t l = 0; l < 3; ++l) {
      EXPECT_EQ(r.LayerSamples(l), 20);
      ASSERT_EQ(r.LayerFrames(l).size(), 3u);
      int64_t sample = 0;
      for (size_t frame : r.LayerFrames(l)) {
        absl::StatusOr<SampleBatch> batch = r.ReadFrame(frame);
        ASSERT_TRUE(batch.ok()) << batch.status();
        EXPECT_EQ(batch->layer, l);
        EXPECT_EQ(batch->first_sample, sample);
        for (int64_t i = 0; i < batch->count; ++i, ++sample) {
          const Written& w = written[static_cast<size_t>(sample * 3 + l)];
          EXPECT_EQ(batch->tokens[static_cast<size_t>(i)], w.token);
          const std::span<const float> input = batch->Input(i);
          for (size_t k = 0; k < w.input.size(); ++k) {
            const float expected =
                dtype == DType::kF16 ? F16ToF32(F32ToF16(w.input[k])) : w.input[k];
            ASSERT_EQ(input[k], expected);
          }
          const std::span<const uint8_t> mask = batch->Mask(i);
          ASSERT_EQ(std::vector<uint8_t>(mask.begin(), mask.end()), w.mask);
          for (int64_t neuron = 0; neuron < 45; ++neuron) {
            ASSERT_EQ(batch->Fired(i, neuron), MaskBit(w.mask, neuron));
          }
        }
      }
      EXPECT_EQ(sample, 20);
    }
  }
}

TEST_F(SampleFileTest, FramesFollowTheByteBudget) {
  const std::string path = Path("budget.zst");
  SampleFileSpec spec = Spec(DType::kF32);  // 4 + 96 + 6 = 106 bytes a sample
  SampleWriterOptions options;
  options.frame_bytes = 1000;  // 9 samples a frame
  absl::StatusOr<std::unique_ptr<SampleFileWriter>> writer =
      SampleFileWriter::Create(path, spec, options);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->samples_per_frame(), 9);
  WriteFile(path, spec, 30, options);
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader = SampleFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (const SampleFrameInfo& f : (*reader)->frames()) EXPECT_LE(f.count, 9);
  EXPECT_EQ((*reader)->LayerFrames(0).size(), 4u);  // 9 + 9 + 9 + 3
}

TEST_F(SampleFileTest, AnAbandonedWriterLeavesNothing) {
  const std::string path = Path("abandoned.zst");
  {
    absl::StatusOr<std::unique_ptr<SampleFileWriter>> writer =
        SampleFileWriter::Create(path, Spec());
    ASSERT_TRUE(writer.ok());
    const std::vector<float> input(24, 1.0f);
    const std::vector<uint8_t> mask(6, 0xFF);
    ASSERT_TRUE((*writer)->Add(0, 1, input, mask).ok());
    ExpectError((*writer)->Add(3, 1, input, mask), {path.c_str(), "layer 3"});
    ExpectError((*writer)->Add(0, 1, std::vector<float>(23), mask), {path.c_str(), "23 inputs"});
  }
  EXPECT_FALSE(fs::exists(path));
  for (const auto& entry : fs::directory_iterator(test::ScratchDir())) {
    EXPECT_FALSE(absl::StrContains(entry.path().string(), "abandoned")) << entry.path();
  }
}

TEST_F(SampleFileTest, RejectsSamplesOfAnotherModel) {
  const std::string path = Path("other_model.zst");
  WriteFile(path, Spec(), 2, {});
  ExpectError(SampleFileReader::Open(path, "ffffffffffffffff").status(),
              {path.c_str(), "another model", kDigest, "ffffffffffffffff"});
}

TEST_F(SampleFileTest, DetectsTruncation) {
  const std::string path = Path("whole.zst");
  WriteFile(path, Spec(), 50, {.max_frame_samples = 16});
  const std::vector<uint8_t> bytes = Bytes(path);
  for (size_t keep : {bytes.size() - 1, bytes.size() - 40, bytes.size() / 2, size_t{100},
                      size_t{63}, size_t{5}, size_t{0}}) {
    const std::string cut = Path(absl::StrCat("cut_", keep, ".zst"));
    Put(cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(keep)));
    const absl::Status s = SampleFileReader::Open(cut).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << keep << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), cut)) << s;
    if (keep >= 64) {
      EXPECT_TRUE(absl::StrContains(s.message(), "truncated")) << keep << ": " << s;
    }
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  const std::string appended = Path("appended.zst");
  Put(appended, longer);
  ExpectError(SampleFileReader::Open(appended).status(), {appended.c_str(), "trailing bytes"});
}

TEST_F(SampleFileTest, DetectsDamage) {
  const std::string path = Path("intact.zst");
  WriteFile(path, Spec(), 50, {.max_frame_samples = 16});
  const std::vector<uint8_t> bytes = Bytes(path);
  absl::StatusOr<std::unique_ptr<SampleFileReader>> intact = SampleFileReader::Open(path);
  ASSERT_TRUE(intact.ok());
  const SampleFrameInfo frame = (*intact)->frames()[2];
  const uint64_t index_offset = bytes.size() - (*intact)->frames().size() * 40;

  auto damaged = [&](const std::string& name, size_t at) {
    std::vector<uint8_t> copy = bytes;
    copy[at] ^= 0x40;
    const std::string p = Path(name);
    Put(p, copy);
    return p;
  };
  // A byte inside a frame: the file opens, that frame fails its checksum, the others read.
  const std::string in_frame = damaged("bad_frame.zst", frame.offset + frame.compressed_size / 2);
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader = SampleFileReader::Open(in_frame);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ExpectError((*reader)->ReadFrame(2).status(), {in_frame.c_str(), "frame 2", "checksum"});
  EXPECT_TRUE((*reader)->ReadFrame(1).ok());
  ExpectError((*reader)->VerifyAll(), {in_frame.c_str(), "checksum"});

  const std::string in_index = damaged("bad_index.zst", index_offset + 45);
  ExpectError(SampleFileReader::Open(in_index).status(), {in_index.c_str(), "index checksum"});
  const std::string in_metadata = damaged("bad_metadata.zst", 70);
  ExpectError(SampleFileReader::Open(in_metadata).status(),
              {in_metadata.c_str(), "header checksum"});
  const std::string in_header = damaged("bad_header.zst", 33);  // frame_count
  EXPECT_EQ(SampleFileReader::Open(in_header).status().code(), absl::StatusCode::kDataLoss);
  const std::string magic = damaged("bad_magic.zst", 1);
  ExpectError(SampleFileReader::Open(magic).status(), {magic.c_str(), "not a pinfer sample file"});
  const std::string version = damaged("bad_version.zst", 8);
  ExpectError(SampleFileReader::Open(version).status(), {version.c_str(), "version"});

  // Damage behind checksums that were recomputed (a buggy writer): zstd's own checks catch it.
  {
    std::vector<uint8_t> copy = bytes;
    copy[frame.offset + frame.compressed_size / 2] ^= 0x40;
    auto put64 = [&](size_t at, uint64_t value) { std::memcpy(copy.data() + at, &value, 8); };
    const std::span<const uint8_t> all(copy);
    put64(index_offset + 2 * 40 + 32, Checksum(all.subspan(frame.offset, frame.compressed_size)));
    put64(40, Checksum(all.subspan(index_offset)));
    uint64_t metadata_size;
    std::memcpy(&metadata_size, copy.data() + 16, 8);
    StreamingChecksum header;
    header.Update(copy.data(), 56);
    header.Update(copy.data() + 64, metadata_size);
    put64(56, header.Digest());
    const std::string p = Path("rechecksummed.zst");
    Put(p, copy);
    absl::StatusOr<std::unique_ptr<SampleFileReader>> r = SampleFileReader::Open(p);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectError((*r)->ReadFrame(2).status(), {p.c_str(), "frame 2"});
  }
  ExpectError(SampleFileReader::Open(Path("missing.zst")).status(), {"missing.zst", "no such"});
}

// A frame header is a claim: one that says it holds more than its blocks produce is refused
// without the reader allocating what it claims (here about 160 GB, count 2^31 of 76-byte samples).
TEST_F(SampleFileTest, RefusesAFrameThatClaimsMoreThanItHolds) {
  SampleFileSpec spec = Spec();
  spec.dim = 32;
  spec.n_ff = 64;
  const uint32_t count = 1u << 31;
  const uint64_t claimed = uint64_t{count} * spec.sample_bytes();
  Metadata m = spec.extra;
  m.SetString("model.digest", spec.model_digest);
  m.SetInt("samples.n_layers", spec.n_layers);
  m.SetInt("samples.dim", spec.dim);
  m.SetInt("samples.n_ff", spec.n_ff);
  m.SetString("samples.input_dtype", "f16");
  ByteWriter metadata;
  m.Serialize(metadata);
  // zstd: magic, descriptor with an 8-byte content size, a single segment (whose window is the
  // claimed size) or a 1 KiB window, the claim, then one last RLE block of 1000 bytes.
  for (bool single_segment : {true, false}) {
    ByteWriter frame;
    frame.Put<uint32_t>(0xFD2FB528);
    frame.Put<uint8_t>(single_segment ? 0xE0 : 0xC0);
    if (!single_segment) frame.Put<uint8_t>(0);
    frame.Put<uint64_t>(claimed);
    const uint32_t block = 1 | (1 << 1) | (1000 << 3);
    frame.PutBytes(&block, 3);
    frame.Put<uint8_t>(0);
    const uint64_t frame_offset = 64 + metadata.size();
    ByteWriter index;
    index.Put<uint64_t>(frame_offset);
    index.Put<uint64_t>(frame.size());
    index.Put<uint64_t>(0);
    index.Put<uint32_t>(0);
    index.Put<uint32_t>(count);
    index.Put<uint64_t>(Checksum(frame.bytes()));
    ByteWriter file;
    file.PutBytes(kSampleFileMagic, 8);
    file.Put<uint16_t>(1);
    file.Put<uint16_t>(0);
    file.Put<uint32_t>(static_cast<uint32_t>(m.size()));
    file.Put<uint64_t>(metadata.size());
    file.Put<uint64_t>(frame_offset + frame.size());
    file.Put<uint64_t>(1);
    file.Put<uint64_t>(Checksum(index.bytes()));
    file.Put<uint64_t>(0);
    StreamingChecksum header;
    header.Update(file.bytes());
    header.Update(metadata.bytes());
    file.Put<uint64_t>(header.Digest());
    for (const ByteWriter* part : {&metadata, &frame, &index}) {
      file.PutBytes(part->bytes().data(), part->size());
    }
    const std::string path = Path(single_segment ? "claims_single.zst" : "claims_window.zst");
    Put(path, file.bytes());
    absl::StatusOr<std::unique_ptr<SampleFileReader>> reader = SampleFileReader::Open(path);
    ASSERT_TRUE(reader.ok()) << reader.status();
    const absl::Status s = (*reader)->ReadFrame(0).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    ExpectError(s, {path.c_str(), "frame 0"});
  }
}

}  // namespace
}  // namespace pinfer
