// libFuzzer target: the predictor training samples reader (SampleFileReader: header, metadata,
// index, then every frame decompressed). Its mutator keeps the checksums valid (sample_image.h):
// it changes metadata values, index fields and frame payloads (decompressed, mutated and
// compressed again), or mutates raw bytes and repairs the checksums. Reading a frame must not
// allocate more than the frame's compressed bytes can produce.
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

#include "format/sample_file.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"
#include "tests/fuzz/pi_mutator.h"
#include "tests/fuzz/sample_image.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace pinfer::fuzz {
namespace {

// Decompresses a frame (when it is a valid one of a sane size), lets libFuzzer change the payload
// and compresses it again, so that well-formed frames of the wrong size or content are read.
void MutatePayload(std::minstd_rand& rng, SampleFrame& frame) {
  const unsigned long long content =
      ZSTD_getFrameContentSize(frame.compressed.data(), frame.compressed.size());
  if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN ||
      content > (1u << 20)) {
    return;
  }
  std::vector<uint8_t> payload(content + 64);
  const size_t got =
      ZSTD_decompress(payload.data(), content, frame.compressed.data(), frame.compressed.size());
  if (ZSTD_isError(got) || got == 0) return;
  payload.resize(LLVMFuzzerMutate(payload.data(), got, payload.size()));
  if (rng() % 4 == 0) payload.resize(payload.size() - payload.size() / 8);
  std::vector<uint8_t> compressed(ZSTD_compressBound(payload.size()));
  const size_t size =
      ZSTD_compress(compressed.data(), compressed.size(), payload.data(), payload.size(), 1);
  if (ZSTD_isError(size)) return;
  compressed.resize(size);
  frame.compressed = std::move(compressed);
}

void MutateImage(std::minstd_rand& rng, SampleImage& image) {
  const uint32_t op = rng() % 8;
  if (op < 3 || image.frames.empty()) {
    MutateMetadata(static_cast<unsigned>(rng()), image.metadata);
    return;
  }
  SampleFrame& f = image.frames[rng() % image.frames.size()];
  switch (op) {
    case 3:
      f.layer = rng() % 4 == 0 ? static_cast<uint32_t>(rng()) : f.layer ^ 1;
      break;
    case 4:
      f.count = rng() % 4 == 0 ? static_cast<uint32_t>(rng()) : f.count + (rng() % 2 ? 1 : -1);
      break;
    case 5:
      f.first_sample += rng() % 2 ? 1 : -1;
      break;
    case 6:
      if (rng() % 2)
        image.frames.push_back(f);
      else
        image.frames.erase(image.frames.begin() +
                           static_cast<ptrdiff_t>(rng() % image.frames.size()));
      break;
    default:
      MutatePayload(rng, f);
      break;
  }
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  using namespace pinfer::fuzz;
  std::minstd_rand rng(seed);
  SampleImage image;
  if (rng() % 8 != 0 && DecodeSampleImage({data, size}, &image)) {
    MutateImage(rng, image);
    std::vector<uint8_t> out = EncodeSampleImage(image);
    if (out.size() <= max_size) {
      std::memcpy(data, out.data(), out.size());
      return out.size();
    }
  }
  size = LLVMFuzzerMutate(data, size, max_size);
  if (rng() % 8 != 0) RepairSampleChecksums({data, size});
  return size;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const std::string path = fuzz::WriteScratchFile("model.samples.zst", {data, size});
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader = SampleFileReader::Open(path);
  if (!reader.ok()) return fuzz::Rejected(reader.status());
  const SampleFileReader& r = **reader;
  int64_t frames = 0;
  for (int64_t l = 0; l < r.n_layers(); ++l) {
    frames += static_cast<int64_t>(r.LayerFrames(l).size());
    fuzz::Require(r.LayerSamples(l) >= 0, "a layer has a negative sample count");
  }
  fuzz::Require(frames == static_cast<int64_t>(r.frames().size()), "frames lost between layers");
  for (size_t i = 0; i < r.frames().size(); ++i) {
    absl::StatusOr<SampleBatch> batch = r.ReadFrame(i);
    if (!batch.ok()) {
      fuzz::Rejected(batch.status());
      continue;
    }
    fuzz::Require(static_cast<int64_t>(batch->tokens.size()) == batch->count &&
                      static_cast<int64_t>(batch->inputs.size()) == batch->count * batch->dim &&
                      static_cast<int64_t>(batch->masks.size()) ==
                          batch->count * SampleMaskBytes(batch->n_ff),
                  "a decoded frame's arrays do not match its count");
    for (int64_t s = 0; s < batch->count; ++s) (void)batch->Fired(s, batch->n_ff - 1);
  }
  return 0;
}
