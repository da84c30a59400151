// One layer's training pairs from model.samples.zst, split into training and validation samples
// and served as minibatches in a shuffled order that depends only on the seed.
//
// Split: the samples of a layer are numbered in token order (the sample file's ordinal); they are
// grouped in blocks of kSplitBlockTokens consecutive tokens, and a block is held out for
// validation when a hash of (seed, block) falls below the validation fraction. Whole blocks are
// held out because neighbouring tokens of one text are alike, so a token-level split would
// flatter the validation numbers. Every layer holds out the same tokens.
//
// Shuffling: every epoch visits the layer's frames in a shuffled order; the frames are read in
// windows of at most `memory_bytes` of decoded samples, and each window's training samples are
// shuffled before being cut into minibatches. When the whole layer fits (the usual case), it is
// decoded once and kept, and every epoch is a full shuffle. Memory stays at one window whatever
// the file size.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/sample_file.h"

namespace pinfer {

inline constexpr int64_t kSplitBlockTokens = 64;

// A deterministic 64-bit generator (splitmix64): the same seed gives the same sequence on every
// platform, unlike the standard distributions.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, bound).
  uint64_t Below(uint64_t bound) { return bound == 0 ? 0 : Next() % bound; }
  template <typename T>
  void Shuffle(std::vector<T>& items) {  // Fisher-Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[Below(i)]);
  }

 private:
  uint64_t state_;
};

// Mixes values into one seed.
uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c = 0);

// Whether sample `ordinal` (a token's position among its layer's samples) is held out.
bool IsValidationSample(uint64_t seed, double validation_fraction, int64_t ordinal);

// A run of samples in memory: inputs [count, dim] f32, fired bit masks [count, mask_bytes].
struct SampleBlock {
  int64_t count = 0;
  int64_t dim = 0;
  int64_t n_ff = 0;
  std::vector<float> inputs;
  std::vector<uint8_t> masks;

  int64_t mask_bytes() const { return SampleMaskBytes(n_ff); }
  const float* Input(int64_t i) const { return inputs.data() + i * dim; }
  const uint8_t* Mask(int64_t i) const { return masks.data() + i * mask_bytes(); }
  void Append(const float* input, const uint8_t* mask);
  void Clear();
};

// out[n, n_ff] = 1 where the neuron fired, else 0.
void UnpackMasks(const uint8_t* masks, int64_t n, int64_t n_ff, float* out);

struct SampleStreamOptions {
  uint64_t seed = 0;
  double validation_fraction = 0.1;
  uint64_t memory_bytes = uint64_t{1} << 30;  // decoded samples held at once
};

class LayerSampleStream {
 public:
  // Reads the layer once to count its training and validation samples and firings. Fails when
  // either split is empty.
  static absl::StatusOr<std::unique_ptr<LayerSampleStream>> Open(
      const SampleFileReader& reader, int64_t layer, const SampleStreamOptions& options);

  int64_t layer() const { return layer_; }
  int64_t dim() const { return reader_.dim(); }
  int64_t n_ff() const { return reader_.n_ff(); }
  int64_t train_samples() const { return train_samples_; }
  int64_t validation_samples() const { return validation_samples_; }
  // Training samples on which each neuron fired.
  const std::vector<int64_t>& train_fire_counts() const { return train_fire_counts_; }
  // Fraction of (validation sample, neuron) pairs that fired.
  double validation_density() const;
  // Per input feature over the training samples: mean and standard deviation (1 where a feature
  // is constant), so that the trainer can standardize the inputs.
  const std::vector<float>& input_mean() const { return input_mean_; }
  const std::vector<float>& input_std() const { return input_std_; }

  // Calls `fn` with consecutive minibatches (at most batch_size samples) covering every training
  // sample once, in the shuffled order of `epoch`. Stops at the first error `fn` returns.
  absl::Status ForEachTrainBatch(int64_t epoch, int64_t batch_size,
                                 const std::function<absl::Status(const SampleBlock&)>& fn) const;
  // The validation samples in file order.
  absl::Status ForEachValidationBatch(
      int64_t batch_size, const std::function<absl::Status(const SampleBlock&)>& fn) const;

 private:
  LayerSampleStream(const SampleFileReader& reader, int64_t layer, SampleStreamOptions options)
      : reader_(reader), layer_(layer), options_(options) {}
  absl::Status Scan();
  // Decodes `frames` and splits their samples.
  absl::Status Load(const std::vector<size_t>& frames, SampleBlock& train,
                    SampleBlock& validation) const;
  absl::Status Emit(const SampleBlock& samples, SplitMix64* shuffle, int64_t batch_size,
                    const std::function<absl::Status(const SampleBlock&)>& fn) const;

  const SampleFileReader& reader_;
  int64_t layer_;
  SampleStreamOptions options_;
  int64_t train_samples_ = 0;
  int64_t validation_samples_ = 0;
  int64_t validation_fired_ = 0;
  std::vector<int64_t> train_fire_counts_;
  std::vector<float> input_mean_, input_std_;
  uint64_t bytes_per_sample_ = 0;
  bool cached_ = false;  // the whole layer fits: train_ and validation_ hold it
  SampleBlock train_, validation_;
};

}  // namespace pinfer
