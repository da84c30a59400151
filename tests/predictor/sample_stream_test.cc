// The trainer's view of a sample file (tools/train_predictor/sample_stream.h): the deterministic
// validation split in blocks of tokens, shuffled epochs that visit every training sample once, and
// the same samples whether a layer is held in memory or streamed in windows.
#include "tools/train_predictor/sample_stream.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "format/sample_file.h"
#include "gtest/gtest.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDim = 8, kNFf = 12, kSamples = 6000;

// Sample t of layer l: input[0] = t (identifies it), input[1] = l, mask = t's low 12 bits.
class SampleStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string(
        (fs::path(testing::TempDir()) / absl::StrCat("stream_", getpid(), ".samples.zst"))
            .string());
    SampleFileSpec spec;
    spec.model_digest = "0011223344556677";
    spec.n_layers = 2;
    spec.dim = kDim;
    spec.n_ff = kNFf;
    spec.input_dtype = DType::kF32;
    SampleWriterOptions options;
    options.max_frame_samples = 500;
    auto writer = SampleFileWriter::Create(*path_, spec, options);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int64_t t = 0; t < kSamples; ++t) {
      for (int64_t l = 0; l < 2; ++l) {
        std::vector<float> input(kDim, 0.5f);
        input[0] = static_cast<float>(t);
        input[1] = static_cast<float>(l);
        const uint8_t mask[2] = {static_cast<uint8_t>(t & 0xFF),
                                 static_cast<uint8_t>((t >> 8) & 0xF)};
        ASSERT_TRUE((*writer)->Add(l, static_cast<int32_t>(t), input, mask).ok());
      }
    }
    ASSERT_TRUE((*writer)->Commit().ok());
    auto reader = SampleFileReader::Open(*path_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = reader->release();
  }
  static void TearDownTestSuite() {
    delete reader_;
    fs::remove(*path_);
    delete path_;
  }

  static std::unique_ptr<LayerSampleStream> Open(int64_t layer, uint64_t seed,
                                                 uint64_t memory = uint64_t{1} << 30) {
    SampleStreamOptions options;
    options.seed = seed;
    options.memory_bytes = memory;
    auto stream = LayerSampleStream::Open(*reader_, layer, options);
    EXPECT_TRUE(stream.ok()) << stream.status();
    return stream.ok() ? *std::move(stream) : nullptr;
  }

  // The sample ids of every training minibatch of an epoch, in order.
  static std::vector<int64_t> Epoch(const LayerSampleStream& s, int64_t epoch) {
    std::vector<int64_t> ids;
    EXPECT_TRUE(s.ForEachTrainBatch(epoch, 100, [&](const SampleBlock& b) {
                   EXPECT_LE(b.count, 100);
                   for (int64_t i = 0; i < b.count; ++i) {
                     const int64_t t = static_cast<int64_t>(b.Input(i)[0]);
                     ids.push_back(t);
                     EXPECT_EQ(b.Mask(i)[0], t & 0xFF);  // input and mask travel together
                     EXPECT_EQ(b.Input(i)[1], static_cast<float>(s.layer()));
                   }
                   return absl::OkStatus();
                 }).ok());
    return ids;
  }
  static std::vector<int64_t> Validation(const LayerSampleStream& s) {
    std::vector<int64_t> ids;
    EXPECT_TRUE(s.ForEachValidationBatch(64, [&](const SampleBlock& b) {
                   for (int64_t i = 0; i < b.count; ++i)
                     ids.push_back(static_cast<int64_t>(b.Input(i)[0]));
                   return absl::OkStatus();
                 }).ok());
    return ids;
  }

  static std::string* path_;
  static SampleFileReader* reader_;
};
std::string* SampleStreamTest::path_ = nullptr;
SampleFileReader* SampleStreamTest::reader_ = nullptr;

TEST_F(SampleStreamTest, HoldsOutWholeBlocksOfTokensTheSameInEveryLayer) {
  auto layer0 = Open(0, 3), layer1 = Open(1, 3);
  const std::vector<int64_t> held0 = Validation(*layer0), held1 = Validation(*layer1);
  EXPECT_EQ(held0, held1);
  EXPECT_TRUE(std::is_sorted(held0.begin(), held0.end()));  // file order
  EXPECT_EQ(layer0->validation_samples(), static_cast<int64_t>(held0.size()));
  EXPECT_EQ(layer0->train_samples() + layer0->validation_samples(), kSamples);
  const double fraction = static_cast<double>(held0.size()) / kSamples;
  EXPECT_GT(fraction, 0.03);
  EXPECT_LT(fraction, 0.2);
  std::set<int64_t> blocks;
  for (int64_t t : held0) {
    blocks.insert(t / kSplitBlockTokens);
    EXPECT_TRUE(IsValidationSample(3, 0.1, t));
  }
  // Whole blocks: every token of a held-out block is held out.
  EXPECT_EQ(held0.size(), blocks.size() * kSplitBlockTokens -
                              (blocks.count((kSamples - 1) / kSplitBlockTokens)
                                   ? kSplitBlockTokens - kSamples % kSplitBlockTokens
                                   : 0));
  // Another seed holds out other blocks.
  EXPECT_NE(Validation(*Open(0, 4)), held0);
}

TEST_F(SampleStreamTest, EveryEpochVisitsEveryTrainingSampleOnceInItsOwnOrder) {
  auto s = Open(1, 11);
  const std::vector<int64_t> held = Validation(*s);
  const std::set<int64_t> held_set(held.begin(), held.end());
  const std::vector<int64_t> e1 = Epoch(*s, 1), e2 = Epoch(*s, 2);
  EXPECT_EQ(static_cast<int64_t>(e1.size()), s->train_samples());
  std::vector<int64_t> sorted1 = e1, sorted2 = e2;
  std::sort(sorted1.begin(), sorted1.end());
  std::sort(sorted2.begin(), sorted2.end());
  EXPECT_EQ(sorted1, sorted2);
  EXPECT_EQ(std::adjacent_find(sorted1.begin(), sorted1.end()), sorted1.end());
  for (int64_t t : sorted1) EXPECT_EQ(held_set.count(t), 0u);
  EXPECT_NE(e1, e2);  // reshuffled per epoch
  EXPECT_FALSE(std::is_sorted(e1.begin(), e1.end()));
  EXPECT_EQ(Epoch(*Open(1, 11), 1), e1);  // same seed, same order
  EXPECT_NE(Epoch(*Open(1, 12), 1), e1);
}

TEST_F(SampleStreamTest, StreamingWindowsServeTheSameSamples) {
  auto cached = Open(0, 5);
  // ~38 bytes per decoded sample: a 64 KiB budget cannot hold the layer, so it is streamed in
  // windows of a few frames.
  auto streamed = Open(0, 5, 64 << 10);
  EXPECT_EQ(streamed->train_samples(), cached->train_samples());
  EXPECT_EQ(streamed->validation_samples(), cached->validation_samples());
  EXPECT_EQ(streamed->train_fire_counts(), cached->train_fire_counts());
  EXPECT_EQ(Validation(*streamed), Validation(*cached));
  std::vector<int64_t> a = Epoch(*streamed, 1), b = Epoch(*cached, 1);
  EXPECT_NE(a, b);  // windows shuffle less globally than a full in-memory shuffle
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
}

TEST_F(SampleStreamTest, CountsFiringsAndInputStatistics) {
  auto s = Open(0, 2);
  const std::vector<int64_t> held = Validation(*s);
  const std::set<int64_t> held_set(held.begin(), held.end());
  std::vector<int64_t> expected(kNFf, 0);
  int64_t validation_fired = 0;
  for (int64_t t = 0; t < kSamples; ++t) {
    for (int64_t i = 0; i < kNFf; ++i) {
      const bool fired = (t >> i) & 1;
      if (held_set.count(t)) {
        validation_fired += fired;
      } else {
        expected[static_cast<size_t>(i)] += fired;
      }
    }
  }
  EXPECT_EQ(s->train_fire_counts(), expected);
  EXPECT_DOUBLE_EQ(s->validation_density(),
                   static_cast<double>(validation_fired) / (held.size() * kNFf));
  EXPECT_FLOAT_EQ(s->input_mean()[1], 0.0f);  // layer 0's constant feature: std 1
  EXPECT_FLOAT_EQ(s->input_std()[1], 1.0f);
  EXPECT_FLOAT_EQ(s->input_mean()[2], 0.5f);
  EXPECT_NEAR(s->input_mean()[0], (kSamples - 1) / 2.0, kSamples * 0.05);
  EXPECT_NEAR(s->input_std()[0], kSamples / std::sqrt(12.0), kSamples * 0.05);
}

TEST_F(SampleStreamTest, AnEmptySplitIsAnError) {
  SampleStreamOptions options;
  options.validation_fraction = 1e-9;
  auto stream = LayerSampleStream::Open(*reader_, 0, options);
  ASSERT_FALSE(stream.ok());
  EXPECT_NE(stream.status().message().find("0 validation samples"), std::string::npos)
      << stream.status();
  EXPECT_FALSE(LayerSampleStream::Open(*reader_, 2, {}).ok());
}

TEST(SplitMix64Test, ShufflesDeterministically) {
  std::vector<int> a(100), b;
  std::iota(a.begin(), a.end(), 0);
  b = a;
  SplitMix64 g1(42), g2(42);
  g1.Shuffle(a);
  g2.Shuffle(b);
  EXPECT_EQ(a, b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(a, sorted);
  EXPECT_EQ(sorted.front(), 0);
  EXPECT_EQ(sorted.back(), 99);
  EXPECT_NE(MixSeed(1, 2), MixSeed(2, 1));
}

}  // namespace
}  // namespace pinfer
