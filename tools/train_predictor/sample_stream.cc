#include "tools/train_predictor/sample_stream.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace pinfer {

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t MixSeed(uint64_t a, uint64_t b, uint64_t c) {
  SplitMix64 g(a ^ std::rotl(b, 21) ^ std::rotl(c, 42) ^ 0x243F6A8885A308D3ull);
  g.Next();
  return g.Next();
}

bool IsValidationSample(uint64_t seed, double validation_fraction, int64_t ordinal) {
  const uint64_t block = static_cast<uint64_t>(ordinal / kSplitBlockTokens);
  // The top 53 bits as a uniform double in [0, 1).
  const double u = static_cast<double>(MixSeed(seed, block, 0x5EED) >> 11) * 0x1.0p-53;
  return u < validation_fraction;
}

void SampleBlock::Append(const float* input, const uint8_t* mask) {
  inputs.insert(inputs.end(), input, input + dim);
  masks.insert(masks.end(), mask, mask + mask_bytes());
  ++count;
}

void SampleBlock::Clear() {
  count = 0;
  inputs.clear();
  masks.clear();
}

void UnpackMasks(const uint8_t* masks, int64_t n, int64_t n_ff, float* out) {
  const int64_t bytes = SampleMaskBytes(n_ff);
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* mask = masks + t * bytes;
    float* row = out + t * n_ff;
    for (int64_t i = 0; i < n_ff; ++i) row[i] = static_cast<float>((mask[i >> 3] >> (i & 7)) & 1);
  }
}

absl::StatusOr<std::unique_ptr<LayerSampleStream>> LayerSampleStream::Open(
    const SampleFileReader& reader, int64_t layer, const SampleStreamOptions& options) {
  if (layer < 0 || layer >= reader.n_layers()) {
    return absl::OutOfRangeError(absl::StrCat(reader.path(), ": no layer ", layer,
                                              " (the file has ", reader.n_layers(), ")"));
  }
  std::unique_ptr<LayerSampleStream> stream(new LayerSampleStream(reader, layer, options));
  if (absl::Status s = stream->Scan(); !s.ok()) return s;
  return stream;
}

double LayerSampleStream::validation_density() const {
  if (validation_samples_ == 0) return 0;
  return static_cast<double>(validation_fired_) /
         (static_cast<double>(validation_samples_) * static_cast<double>(n_ff()));
}

absl::Status LayerSampleStream::Load(const std::vector<size_t>& frames, SampleBlock& train,
                                     SampleBlock& validation) const {
  for (SampleBlock* b : {&train, &validation}) {
    b->Clear();
    b->dim = dim();
    b->n_ff = n_ff();
  }
  for (size_t frame : frames) {
    absl::StatusOr<SampleBatch> batch = reader_.ReadFrame(frame);
    if (!batch.ok()) return batch.status();
    for (int64_t i = 0; i < batch->count; ++i) {
      const bool held_out =
          IsValidationSample(options_.seed, options_.validation_fraction, batch->first_sample + i);
      (held_out ? validation : train).Append(batch->Input(i).data(), batch->Mask(i).data());
    }
  }
  return absl::OkStatus();
}

absl::Status LayerSampleStream::Scan() {
  const std::vector<size_t>& frames = reader_.LayerFrames(layer_);
  bytes_per_sample_ =
      static_cast<uint64_t>(dim()) * sizeof(float) + static_cast<uint64_t>(SampleMaskBytes(n_ff()));
  const uint64_t total = static_cast<uint64_t>(reader_.LayerSamples(layer_)) * bytes_per_sample_;
  train_fire_counts_.assign(static_cast<size_t>(n_ff()), 0);
  std::vector<double> sum(static_cast<size_t>(dim()), 0.0), sum2(static_cast<size_t>(dim()), 0.0);
  auto count = [&](const SampleBlock& train, const SampleBlock& validation) {
    train_samples_ += train.count;
    validation_samples_ += validation.count;
    for (int64_t t = 0; t < train.count; ++t) {
      const float* x = train.Input(t);
      for (size_t c = 0; c < sum.size(); ++c) {
        sum[c] += x[c];
        sum2[c] += static_cast<double>(x[c]) * x[c];
      }
      const uint8_t* mask = train.Mask(t);
      for (int64_t i = 0; i < n_ff(); ++i) {
        train_fire_counts_[static_cast<size_t>(i)] += (mask[i >> 3] >> (i & 7)) & 1;
      }
    }
    for (int64_t t = 0; t < validation.count; ++t) {
      const uint8_t* mask = validation.Mask(t);
      for (int64_t b = 0; b < validation.mask_bytes(); ++b)
        validation_fired_ += std::popcount(mask[b]);
    }
  };
  if (total <= options_.memory_bytes) {
    cached_ = true;
    if (absl::Status s = Load(frames, train_, validation_); !s.ok()) return s;
    count(train_, validation_);
  } else {
    SampleBlock train, validation;
    for (size_t frame : frames) {
      if (absl::Status s = Load({frame}, train, validation); !s.ok()) return s;
      count(train, validation);
    }
  }
  if (train_samples_ == 0 || validation_samples_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(reader_.path(), ": layer ", layer_, " has ", train_samples_, " training and ",
                     validation_samples_,
                     " validation samples; both are needed (profile more tokens, or "
                     "change --validation-fraction)"));
  }
  input_mean_.resize(sum.size());
  input_std_.resize(sum.size());
  const double n = static_cast<double>(train_samples_);
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = sum[c] / n;
    const double var = std::max(0.0, sum2[c] / n - mean * mean);
    input_mean_[c] = static_cast<float>(mean);
    input_std_[c] = var > 1e-12 ? static_cast<float>(std::sqrt(var)) : 1.0f;
  }
  return absl::OkStatus();
}

absl::Status LayerSampleStream::Emit(
    const SampleBlock& samples, SplitMix64* shuffle, int64_t batch_size,
    const std::function<absl::Status(const SampleBlock&)>& fn) const {
  std::vector<int64_t> order(static_cast<size_t>(samples.count));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle != nullptr) shuffle->Shuffle(order);
  SampleBlock batch;
  batch.dim = samples.dim;
  batch.n_ff = samples.n_ff;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch_size)) {
    batch.Clear();
    const size_t end = std::min(order.size(), start + static_cast<size_t>(batch_size));
    for (size_t k = start; k < end; ++k)
      batch.Append(samples.Input(order[k]), samples.Mask(order[k]));
    if (absl::Status s = fn(batch); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LayerSampleStream::ForEachTrainBatch(
    int64_t epoch, int64_t batch_size,
    const std::function<absl::Status(const SampleBlock&)>& fn) const {
  SplitMix64 shuffle(
      MixSeed(options_.seed, static_cast<uint64_t>(layer_), static_cast<uint64_t>(epoch)));
  if (cached_) return Emit(train_, &shuffle, batch_size, fn);
  std::vector<size_t> frames = reader_.LayerFrames(layer_);
  shuffle.Shuffle(frames);
  SampleBlock train, validation;
  for (size_t first = 0; first < frames.size();) {
    // A window: as many frames as fit in the memory budget (one at least).
    std::vector<size_t> window;
    uint64_t bytes = 0;
    for (; first < frames.size(); ++first) {
      const uint64_t frame_bytes =
          static_cast<uint64_t>(reader_.frames()[frames[first]].count) * bytes_per_sample_;
      if (!window.empty() && bytes + frame_bytes > options_.memory_bytes) break;
      window.push_back(frames[first]);
      bytes += frame_bytes;
    }
    if (absl::Status s = Load(window, train, validation); !s.ok()) return s;
    if (absl::Status s = Emit(train, &shuffle, batch_size, fn); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LayerSampleStream::ForEachValidationBatch(
    int64_t batch_size, const std::function<absl::Status(const SampleBlock&)>& fn) const {
  if (cached_) return Emit(validation_, nullptr, batch_size, fn);
  SampleBlock train, validation;
  for (size_t frame : reader_.LayerFrames(layer_)) {
    if (absl::Status s = Load({frame}, train, validation); !s.ok()) return s;
    if (absl::Status s = Emit(validation, nullptr, batch_size, fn); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace pinfer
