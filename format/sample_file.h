// model.samples.zst: predictor training pairs, written by `pi-profile --dump-samples` and streamed
// by pi-train-predictor. One pair per (token, layer): the FFN input x [dim] that the layer saw
// (after ffn_norm and the norm activation) and the bit mask of the neurons that fired on it (the
// profile's rule: a_i != 0 for exact-zero models, |act(gate_i·x)| > τ_layer for calibrated ones).
//
// The pairs are zstd-compressed in INDEPENDENT frames, each holding consecutive samples of ONE
// layer, with an index at the end of the file: a trainer picks a layer's frames, shuffles their
// order and decompresses one at a time, so memory stays at one frame whatever the file size.
//
// Layout (little-endian; the code is the reference):
//   offset 0      header, 64 bytes
//     0   u8[8]  magic 50 49 53 41 4D 50 00 1A ("PISAMP\0\x1a")
//     8   u16    version_major = 1
//     10  u16    version_minor = 0 (additions an old reader can ignore: new metadata keys)
//     12  u32    metadata_count
//     16  u64    metadata_size (bytes; the metadata starts at offset 64)
//     24  u64    index_offset (the index runs from here to the end of the file)
//     32  u64    frame_count
//     40  u64    index_checksum: XXH3-64 of the index bytes
//     48  u64    reserved, zero
//     56  u64    header_checksum: XXH3-64 of header bytes [0, 56) followed by the metadata bytes
//   offset 64     metadata: entries as in .pi files (format/metadata.h), sorted by key
//   ...           frames: each one complete zstd frame (content size and zstd checksum included)
//   index_offset  index: frame_count entries of 40 bytes, in file order:
//     u64 offset, u64 compressed_size, u64 first_sample (ordinal of the frame's first sample among
//     its layer's samples), u32 layer, u32 count, u64 checksum (XXH3-64 of the compressed bytes)
//   file end      = index_offset + 40 · frame_count (a truncated file fails this check)
//
// A frame decompresses to `count` samples of its layer, as three arrays one after the other:
//   tokens  i32 [count]               the token id of each sample
//   inputs  f16|f32 [count, dim]      the FFN input (dtype: metadata samples.input_dtype)
//   masks   u8 [count, mask_bytes]    mask_bytes = ceil(n_ff / 8); neuron i fired when bit i % 8
//                                     (least significant first) of byte i / 8 is set; padding 0
//
// Metadata keys (required unless noted):
//   model.digest            string   content digest of the model the samples come from
//   samples.n_layers        int
//   samples.dim             int      length of an input vector
//   samples.n_ff            int      neurons per layer (bits of a mask)
//   samples.input_dtype     string   "f16" or "f32"
//   samples.fire_rule       string   (optional) "nonzero" or "threshold"
//   samples.thresholds      float[]  (optional) τ per layer for the "threshold" rule
//   samples.sample_every    int      (optional) one token in this many was kept
//   provenance.*                     (optional) tool, version, arguments
//
// Writes are atomic (AtomicFile): a failed or abandoned writer leaves no file under the final name.
// Readers validate the header, metadata and index (bounds, order, overlaps, counts, checksums)
// on open and each frame's checksum and sizes when it is read; every error names the file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/atomic_file.h"
#include "format/dtype.h"
#include "format/mapped_file.h"
#include "format/metadata.h"

namespace pinfer {

inline constexpr uint8_t kSampleFileMagic[8] = {'P', 'I', 'S', 'A', 'M', 'P', 0x00, 0x1A};
inline constexpr uint16_t kSampleFileVersionMajor = 1;
inline constexpr uint16_t kSampleFileVersionMinor = 0;
inline constexpr uint64_t kSampleFileHeaderSize = 64;
inline constexpr uint64_t kSampleFileIndexEntrySize = 40;

inline int64_t SampleMaskBytes(int64_t n_ff) { return (n_ff + 7) / 8; }
inline bool MaskBit(std::span<const uint8_t> mask, int64_t neuron) {
  return (mask[static_cast<size_t>(neuron >> 3)] >> (neuron & 7)) & 1;
}
inline void SetMaskBit(std::span<uint8_t> mask, int64_t neuron) {
  mask[static_cast<size_t>(neuron >> 3)] |= static_cast<uint8_t>(1u << (neuron & 7));
}

// "dir/model.pi" -> "dir/model.samples.zst" (the name later stages look for beside the model).
std::string DefaultSampleFilePath(const std::string& model_path);

// What the samples are: the shape of a pair and the model they come from.
struct SampleFileSpec {
  std::string model_digest;
  int64_t n_layers = 0;
  int64_t dim = 0;
  int64_t n_ff = 0;
  DType input_dtype = DType::kF16;  // f16 (half the size; ample for a predictor's input) or f32
  Metadata extra;                   // further keys: samples.fire_rule, thresholds, provenance...

  absl::Status Validate() const;
  int64_t mask_bytes() const { return SampleMaskBytes(n_ff); }
  // Bytes of one decompressed sample: token, input, mask.
  uint64_t sample_bytes() const;
};

struct SampleWriterOptions {
  // A frame is closed when its decompressed payload would exceed this, or at max_frame_samples:
  // frames are the unit of shuffling and of reader memory.
  uint64_t frame_bytes = 1 << 20;
  int64_t max_frame_samples = 4096;
  int compression_level = 3;
};

// Buffers at most one frame per layer (n_layers · frame_bytes of memory), compresses each full
// frame and appends it to a temporary file; Commit() writes the rest, the index and the header and
// renames the file into place.
class SampleFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<SampleFileWriter>> Create(
      const std::string& path, SampleFileSpec spec, const SampleWriterOptions& options = {});
  ~SampleFileWriter();
  SampleFileWriter(const SampleFileWriter&) = delete;
  SampleFileWriter& operator=(const SampleFileWriter&) = delete;

  // One sample of `layer`: `input` has dim values, `mask` mask_bytes bytes.
  absl::Status Add(int64_t layer, int32_t token, std::span<const float> input,
                   std::span<const uint8_t> mask);
  absl::Status Commit();

  const std::string& path() const { return file_->path(); }
  int64_t samples(int64_t layer) const { return layers_[static_cast<size_t>(layer)].total; }
  int64_t frames() const { return static_cast<int64_t>(index_.size()); }
  uint64_t bytes_written() const { return end_; }
  int64_t samples_per_frame() const { return samples_per_frame_; }

 private:
  struct LayerBuffer {
    std::vector<int32_t> tokens;
    std::vector<uint8_t> inputs;  // count · dim · element size
    std::vector<uint8_t> masks;   // count · mask_bytes
    int64_t total = 0;            // samples added to this layer so far
  };
  struct IndexEntry {
    uint64_t offset, compressed_size, first_sample;
    uint32_t layer, count;
    uint64_t checksum;
  };
  SampleFileWriter() = default;
  absl::Status Flush(int64_t layer);

  std::unique_ptr<AtomicFile> file_;
  SampleFileSpec spec_;
  SampleWriterOptions options_;
  int64_t samples_per_frame_ = 0;
  void* cctx_ = nullptr;  // ZSTD_CCtx
  std::vector<LayerBuffer> layers_;
  std::vector<IndexEntry> index_;
  std::vector<uint8_t> payload_, compressed_;
  uint64_t metadata_size_ = 0;
  uint64_t end_ = 0;
  bool committed_ = false;
};

struct SampleFrameInfo {
  uint64_t offset = 0;
  uint64_t compressed_size = 0;
  int64_t first_sample = 0;  // among its layer's samples
  int64_t layer = 0;
  int64_t count = 0;
  uint64_t checksum = 0;
};

// The decompressed samples of one frame.
struct SampleBatch {
  int64_t layer = 0;
  int64_t first_sample = 0;
  int64_t count = 0;
  int64_t dim = 0;
  int64_t n_ff = 0;
  std::vector<int32_t> tokens;  // [count]
  std::vector<float> inputs;    // [count, dim], converted to f32
  std::vector<uint8_t> masks;   // [count, mask_bytes]

  std::span<const float> Input(int64_t i) const {
    return std::span<const float>(inputs).subspan(static_cast<size_t>(i * dim),
                                                  static_cast<size_t>(dim));
  }
  std::span<const uint8_t> Mask(int64_t i) const {
    const int64_t bytes = SampleMaskBytes(n_ff);
    return std::span<const uint8_t>(masks).subspan(static_cast<size_t>(i * bytes),
                                                   static_cast<size_t>(bytes));
  }
  bool Fired(int64_t i, int64_t neuron) const { return MaskBit(Mask(i), neuron); }
};

// Maps the file and validates header, metadata and index; frames are decompressed on demand.
// Const methods are safe to call from several threads at once.
class SampleFileReader {
 public:
  // When `expected_model_digest` is given, samples of another model are rejected with an error
  // naming both digests.
  static absl::StatusOr<std::unique_ptr<SampleFileReader>> Open(
      const std::string& path, std::optional<std::string> expected_model_digest = std::nullopt);
  SampleFileReader(const SampleFileReader&) = delete;
  SampleFileReader& operator=(const SampleFileReader&) = delete;

  const std::string& path() const { return file_->path(); }
  const Metadata& metadata() const { return metadata_; }
  const SampleFileSpec& spec() const { return spec_; }
  const std::string& model_digest() const { return spec_.model_digest; }
  int64_t n_layers() const { return spec_.n_layers; }
  int64_t dim() const { return spec_.dim; }
  int64_t n_ff() const { return spec_.n_ff; }

  const std::vector<SampleFrameInfo>& frames() const { return frames_; }
  // Indices into frames() of one layer's frames, in sample order.
  const std::vector<size_t>& LayerFrames(int64_t layer) const {
    return layer_frames_[static_cast<size_t>(layer)];
  }
  int64_t LayerSamples(int64_t layer) const { return layer_samples_[static_cast<size_t>(layer)]; }

  // Verifies the frame's checksum, decompresses it and checks its size.
  absl::StatusOr<SampleBatch> ReadFrame(size_t frame) const;
  // Reads and checks every frame, one at a time.
  absl::Status VerifyAll() const;

 private:
  SampleFileReader() = default;
  absl::Status Parse(std::optional<std::string> expected_model_digest);
  absl::Status Corrupt(std::string_view reason) const;

  std::unique_ptr<MappedFile> file_;
  Metadata metadata_;
  SampleFileSpec spec_;
  std::vector<SampleFrameInfo> frames_;
  std::vector<std::vector<size_t>> layer_frames_;
  std::vector<int64_t> layer_samples_;
};

}  // namespace pinfer
