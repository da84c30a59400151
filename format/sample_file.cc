#include "format/sample_file.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "format/byte_io.h"
#include "format/checksum.h"
#include "format/half.h"
#include "format/strings.h"

namespace pinfer {
namespace {

constexpr char kModelDigest[] = "model.digest";
constexpr char kLayers[] = "samples.n_layers";
constexpr char kDim[] = "samples.dim";
constexpr char kNff[] = "samples.n_ff";
constexpr char kInputDtype[] = "samples.input_dtype";

// The header's fields after the magic, in file order.
struct HeaderFields {
  uint16_t version_major = kSampleFileVersionMajor;
  uint16_t version_minor = kSampleFileVersionMinor;
  uint32_t metadata_count = 0;
  uint64_t metadata_size = 0;
  uint64_t index_offset = 0;
  uint64_t frame_count = 0;
  uint64_t index_checksum = 0;
  uint64_t reserved = 0;
};
constexpr uint64_t kChecksumOffset = 56;

std::vector<uint8_t> SerializeHeader(const HeaderFields& h, std::span<const uint8_t> metadata) {
  ByteWriter w;
  w.PutBytes(kSampleFileMagic, sizeof(kSampleFileMagic));
  w.Put(h.version_major);
  w.Put(h.version_minor);
  w.Put(h.metadata_count);
  w.Put(h.metadata_size);
  w.Put(h.index_offset);
  w.Put(h.frame_count);
  w.Put(h.index_checksum);
  w.Put(h.reserved);
  StreamingChecksum checksum;
  checksum.Update(w.bytes());
  checksum.Update(metadata);
  w.Put<uint64_t>(checksum.Digest());
  return std::move(w.bytes());
}

uint64_t ElementBytes(DType dtype) { return dtype == DType::kF16 ? 2 : 4; }

}  // namespace

std::string DefaultSampleFilePath(const std::string& model_path) {
  std::string base = model_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return base + ".samples.zst";
}

absl::Status SampleFileSpec::Validate() const {
  if (model_digest.empty()) return absl::InvalidArgumentError("samples need the model's digest");
  if (n_layers <= 0 || dim <= 0 || n_ff <= 0 || n_layers > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid sample shape: ", n_layers, " layers, dim ", dim, ", n_ff ", n_ff));
  }
  if (input_dtype != DType::kF16 && input_dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("sample inputs are f16 or f32, not ", Sv(DTypeName(input_dtype))));
  }
  return absl::OkStatus();
}

uint64_t SampleFileSpec::sample_bytes() const {
  return sizeof(int32_t) + static_cast<uint64_t>(dim) * ElementBytes(input_dtype) +
         static_cast<uint64_t>(mask_bytes());
}

// ---------------------------------------------------------------------------------------------
// Writer

absl::StatusOr<std::unique_ptr<SampleFileWriter>> SampleFileWriter::Create(
    const std::string& path, SampleFileSpec spec, const SampleWriterOptions& options) {
  if (absl::Status s = spec.Validate(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  auto writer = std::unique_ptr<SampleFileWriter>(new SampleFileWriter());
  absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path);
  if (!file.ok()) return file.status();
  writer->file_ = *std::move(file);
  writer->options_ = options;
  writer->samples_per_frame_ =
      std::clamp<int64_t>(static_cast<int64_t>(options.frame_bytes / spec.sample_bytes()), 1,
                          std::max<int64_t>(1, options.max_frame_samples));
  writer->cctx_ = ZSTD_createCCtx();
  if (writer->cctx_ == nullptr) return absl::ResourceExhaustedError("cannot create a zstd context");
  auto* cctx = static_cast<ZSTD_CCtx*>(writer->cctx_);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, options.compression_level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  writer->layers_.resize(static_cast<size_t>(spec.n_layers));

  // The header is written last (it records the index); the metadata goes right after its place.
  spec.extra.SetString(kModelDigest, spec.model_digest);
  spec.extra.SetInt(kLayers, spec.n_layers);
  spec.extra.SetInt(kDim, spec.dim);
  spec.extra.SetInt(kNff, spec.n_ff);
  spec.extra.SetString(kInputDtype, std::string(DTypeName(spec.input_dtype)));
  ByteWriter metadata;
  spec.extra.Serialize(metadata);
  writer->metadata_size_ = metadata.size();
  const std::vector<uint8_t> placeholder(kSampleFileHeaderSize, 0);
  if (absl::Status s = writer->file_->Append(placeholder); !s.ok()) return s;
  if (absl::Status s = writer->file_->Append(metadata.bytes()); !s.ok()) return s;
  writer->end_ = kSampleFileHeaderSize + metadata.size();
  writer->spec_ = std::move(spec);
  return writer;
}

SampleFileWriter::~SampleFileWriter() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

absl::Status SampleFileWriter::Add(int64_t layer, int32_t token, std::span<const float> input,
                                   std::span<const uint8_t> mask) {
  if (committed_) return absl::FailedPreconditionError(absl::StrCat(path(), ": already committed"));
  if (layer < 0 || layer >= spec_.n_layers) {
    return absl::OutOfRangeError(
        absl::StrCat(path(), ": layer ", layer, " is outside the ", spec_.n_layers, " layers"));
  }
  if (static_cast<int64_t>(input.size()) != spec_.dim ||
      static_cast<int64_t>(mask.size()) != spec_.mask_bytes()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path(), ": a sample has ", input.size(), " inputs and ", mask.size(),
                     " mask bytes, expected ", spec_.dim, " and ", spec_.mask_bytes()));
  }
  LayerBuffer& b = layers_[static_cast<size_t>(layer)];
  b.tokens.push_back(token);
  if (spec_.input_dtype == DType::kF16) {
    const size_t at = b.inputs.size();
    b.inputs.resize(at + input.size() * 2);
    for (size_t i = 0; i < input.size(); ++i) {
      const uint16_t h = F32ToF16(input[i]);
      std::memcpy(b.inputs.data() + at + 2 * i, &h, 2);
    }
  } else {
    const auto* bytes = reinterpret_cast<const uint8_t*>(input.data());
    b.inputs.insert(b.inputs.end(), bytes, bytes + input.size() * 4);
  }
  // Padding bits past n_ff are kept zero, so equal masks have equal bytes.
  b.masks.insert(b.masks.end(), mask.begin(), mask.end());
  if (spec_.n_ff % 8 != 0) b.masks.back() &= static_cast<uint8_t>((1u << (spec_.n_ff % 8)) - 1);
  if (static_cast<int64_t>(b.tokens.size()) >= samples_per_frame_) return Flush(layer);
  return absl::OkStatus();
}

absl::Status SampleFileWriter::Flush(int64_t layer) {
  LayerBuffer& b = layers_[static_cast<size_t>(layer)];
  if (b.tokens.empty()) return absl::OkStatus();
  const size_t count = b.tokens.size();
  payload_.resize(count * sizeof(int32_t) + b.inputs.size() + b.masks.size());
  uint8_t* p = payload_.data();
  std::memcpy(p, b.tokens.data(), count * sizeof(int32_t));
  p += count * sizeof(int32_t);
  std::memcpy(p, b.inputs.data(), b.inputs.size());
  p += b.inputs.size();
  std::memcpy(p, b.masks.data(), b.masks.size());

  compressed_.resize(ZSTD_compressBound(payload_.size()));
  const size_t size = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), compressed_.data(),
                                     compressed_.size(), payload_.data(), payload_.size());
  if (ZSTD_isError(size)) {
    return absl::InternalError(
        absl::StrCat(path(), ": zstd compression failed: ", ZSTD_getErrorName(size)));
  }
  const std::span<const uint8_t> frame(compressed_.data(), size);
  if (absl::Status s = file_->Append(frame); !s.ok()) return s;
  index_.push_back({end_, size, static_cast<uint64_t>(b.total), static_cast<uint32_t>(layer),
                    static_cast<uint32_t>(count), Checksum(frame)});
  end_ += size;
  b.total += static_cast<int64_t>(count);
  b.tokens.clear();
  b.inputs.clear();
  b.masks.clear();
  return absl::OkStatus();
}

absl::Status SampleFileWriter::Commit() {
  if (committed_) return absl::FailedPreconditionError(absl::StrCat(path(), ": already committed"));
  for (int64_t l = 0; l < spec_.n_layers; ++l) {
    if (absl::Status s = Flush(l); !s.ok()) return s;
  }
  ByteWriter index;
  for (const IndexEntry& e : index_) {
    index.Put(e.offset);
    index.Put(e.compressed_size);
    index.Put(e.first_sample);
    index.Put(e.layer);
    index.Put(e.count);
    index.Put(e.checksum);
  }
  HeaderFields h;
  h.metadata_count = static_cast<uint32_t>(spec_.extra.size());
  h.metadata_size = metadata_size_;
  h.index_offset = end_;
  h.frame_count = index_.size();
  h.index_checksum = Checksum(index.bytes());
  if (absl::Status s = file_->Append(index.bytes()); !s.ok()) return s;
  ByteWriter metadata;
  spec_.extra.Serialize(metadata);
  if (absl::Status s = file_->WriteAt(0, SerializeHeader(h, metadata.bytes())); !s.ok()) return s;
  if (absl::Status s = file_->Commit(); !s.ok()) return s;
  end_ += index.size();
  committed_ = true;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Reader

absl::Status SampleFileReader::Corrupt(std::string_view reason) const {
  return absl::DataLossError(absl::StrCat(path(), ": ", Sv(reason)));
}

absl::StatusOr<std::unique_ptr<SampleFileReader>> SampleFileReader::Open(
    const std::string& path, std::optional<std::string> expected_model_digest) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  auto reader = std::unique_ptr<SampleFileReader>(new SampleFileReader());
  reader->file_ = *std::move(file);
  if (absl::Status s = reader->Parse(std::move(expected_model_digest)); !s.ok()) return s;
  return reader;
}

absl::Status SampleFileReader::Parse(std::optional<std::string> expected_model_digest) {
  const std::span<const uint8_t> bytes = file_->bytes();
  const uint64_t size = bytes.size();
  if (size == 0) return Corrupt("the file is empty (not a pinfer sample file)");
  if (size < sizeof(kSampleFileMagic) ||
      std::memcmp(bytes.data(), kSampleFileMagic, sizeof(kSampleFileMagic)) != 0) {
    return Corrupt("not a pinfer sample file (wrong magic)");
  }
  if (size < kSampleFileHeaderSize) {
    return Corrupt(absl::StrCat("truncated: ", size, " bytes, shorter than the ",
                                kSampleFileHeaderSize, "-byte header"));
  }
  ByteReader header(bytes.subspan(sizeof(kSampleFileMagic)));
  HeaderFields h;
  uint64_t header_checksum = 0;
  header.Get(&h.version_major);
  header.Get(&h.version_minor);
  header.Get(&h.metadata_count);
  header.Get(&h.metadata_size);
  header.Get(&h.index_offset);
  header.Get(&h.frame_count);
  header.Get(&h.index_checksum);
  header.Get(&h.reserved);
  header.Get(&header_checksum);
  if (h.version_major != kSampleFileVersionMajor) {
    return absl::FailedPreconditionError(absl::StrCat(
        path(), ": sample file version ", h.version_major, ".", h.version_minor,
        " is not supported (this build reads version ", kSampleFileVersionMajor, ".x)"));
  }
  // Sizes are compared before they are added, so that no sum can overflow.
  const uint64_t metadata_end = kSampleFileHeaderSize + h.metadata_size;
  if (h.metadata_size > size - kSampleFileHeaderSize || h.index_offset < metadata_end ||
      h.index_offset > size) {
    return Corrupt(
        absl::StrCat("truncated or damaged: the header places the metadata and index "
                     "beyond the file's ",
                     size, " bytes"));
  }
  if (h.frame_count > (size - h.index_offset) / kSampleFileIndexEntrySize ||
      h.index_offset + h.frame_count * kSampleFileIndexEntrySize != size) {
    const bool short_file = h.frame_count > (size - h.index_offset) / kSampleFileIndexEntrySize;
    return Corrupt(absl::StrCat(short_file ? "truncated" : "has trailing bytes", ": the index of ",
                                h.frame_count, " frames at offset ", h.index_offset,
                                " does not end at the end of the file (", size, " bytes)"));
  }
  StreamingChecksum checksum;
  checksum.Update(bytes.data(), kChecksumOffset);
  checksum.Update(bytes.data() + kSampleFileHeaderSize, h.metadata_size);
  if (checksum.Digest() != header_checksum) {
    return Corrupt("header checksum mismatch (the header or metadata is damaged)");
  }
  const std::span<const uint8_t> index_bytes =
      bytes.subspan(h.index_offset, h.frame_count * kSampleFileIndexEntrySize);
  if (Checksum(index_bytes) != h.index_checksum) {
    return Corrupt("index checksum mismatch (the frame index is damaged)");
  }

  ByteReader metadata_reader(bytes.subspan(kSampleFileHeaderSize, h.metadata_size));
  absl::StatusOr<Metadata> metadata = Metadata::Parse(metadata_reader, h.metadata_count);
  if (!metadata.ok()) return Corrupt(StdSv(metadata.status().message()));
  if (metadata_reader.remaining() != 0) return Corrupt("metadata region has trailing bytes");
  metadata_ = *std::move(metadata);
  absl::StatusOr<std::string> digest = metadata_.GetString(kModelDigest);
  absl::StatusOr<int64_t> layers = metadata_.GetInt(kLayers);
  absl::StatusOr<int64_t> dim = metadata_.GetInt(kDim);
  absl::StatusOr<int64_t> n_ff = metadata_.GetInt(kNff);
  absl::StatusOr<std::string> dtype_name = metadata_.GetString(kInputDtype);
  for (const absl::Status& s :
       {digest.status(), layers.status(), dim.status(), n_ff.status(), dtype_name.status()}) {
    if (!s.ok()) return Corrupt(StdSv(s.message()));
  }
  absl::StatusOr<DType> dtype = ParseDType(*dtype_name);
  if (!dtype.ok()) return Corrupt(StdSv(dtype.status().message()));
  spec_.model_digest = *digest;
  spec_.n_layers = *layers;
  spec_.dim = *dim;
  spec_.n_ff = *n_ff;
  spec_.input_dtype = *dtype;
  spec_.extra = metadata_;
  // Bounds that keep every later size computation far from overflow.
  if (spec_.dim > (int64_t{1} << 24) || spec_.n_ff > (int64_t{1} << 24) ||
      spec_.n_layers > (int64_t{1} << 16)) {
    return Corrupt(absl::StrCat("implausible shape: ", spec_.n_layers, " layers, dim ", spec_.dim,
                                ", n_ff ", spec_.n_ff));
  }
  if (absl::Status s = spec_.Validate(); !s.ok()) return Corrupt(StdSv(s.message()));
  if (expected_model_digest && *expected_model_digest != spec_.model_digest) {
    return absl::FailedPreconditionError(
        absl::StrCat(path(), ": samples were made for another model (model digest ",
                     spec_.model_digest, ", this model is ", *expected_model_digest, ")"));
  }

  layer_frames_.assign(static_cast<size_t>(spec_.n_layers), {});
  layer_samples_.assign(static_cast<size_t>(spec_.n_layers), 0);
  ByteReader index(index_bytes);
  uint64_t previous_end = metadata_end;
  frames_.resize(h.frame_count);
  for (uint64_t i = 0; i < h.frame_count; ++i) {
    uint64_t offset = 0, compressed_size = 0, first_sample = 0, frame_checksum = 0;
    uint32_t layer = 0, count = 0;
    index.Get(&offset);
    index.Get(&compressed_size);
    index.Get(&first_sample);
    index.Get(&layer);
    index.Get(&count);
    index.Get(&frame_checksum);
    const std::string where = absl::StrCat("frame ", i, " of the index ");
    if (offset < previous_end || compressed_size == 0 || offset > h.index_offset ||
        compressed_size > h.index_offset - offset) {
      return Corrupt(absl::StrCat(where, "lies outside the frame region or overlaps another"));
    }
    if (layer >= spec_.n_layers || count == 0) {
      return Corrupt(absl::StrCat(where, "has layer ", layer, " and ", count, " samples"));
    }
    int64_t& seen = layer_samples_[layer];
    if (first_sample != static_cast<uint64_t>(seen)) {
      return Corrupt(absl::StrCat(where, "starts at sample ", first_sample, " of layer ", layer,
                                  ", expected ", seen));
    }
    frames_[i] = {offset, compressed_size, static_cast<int64_t>(first_sample),
                  layer,  count,           frame_checksum};
    layer_frames_[layer].push_back(i);
    seen += count;
    previous_end = offset + compressed_size;
  }
  return absl::OkStatus();
}

absl::StatusOr<SampleBatch> SampleFileReader::ReadFrame(size_t frame) const {
  if (frame >= frames_.size()) {
    return absl::OutOfRangeError(
        absl::StrCat(path(), ": frame ", frame, " is outside the ", frames_.size(), " frames"));
  }
  const SampleFrameInfo& f = frames_[frame];
  const std::string where =
      absl::StrCat("frame ", frame, " (layer ", f.layer, ", at offset ", f.offset, ")");
  const std::span<const uint8_t> compressed = file_->bytes().subspan(f.offset, f.compressed_size);
  if (Checksum(compressed) != f.checksum) {
    return Corrupt(absl::StrCat(where, ": checksum mismatch (the data is damaged)"));
  }
  const uint64_t expected = static_cast<uint64_t>(f.count) * spec_.sample_bytes();
  const unsigned long long content = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (content != expected ||
      ZSTD_findFrameCompressedSize(compressed.data(), compressed.size()) != compressed.size()) {
    return Corrupt(absl::StrCat(where, ": not one zstd frame of ", expected, " bytes"));
  }
  // The frame header's content size is only a claim (a few bytes can claim terabytes): the buffer
  // grows as the frame really decompresses, never ahead of what its blocks produce. Streaming
  // keeps a window buffer of the frame's window size, which is the claimed size for a
  // single-segment frame: capping the window at 8 MiB (compression levels up to 19 use no more;
  // the writer's 1 MiB frames at level 3 at most 2 MiB) bounds that too.
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (dctx == nullptr) return absl::ResourceExhaustedError("cannot create a zstd context");
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, 23);
  std::vector<uint8_t> payload;
  ZSTD_inBuffer in{compressed.data(), compressed.size(), 0};
  size_t produced = 0, more = 1;
  while (more != 0) {
    if (produced == payload.size()) {
      if (produced == expected) break;  // the frame goes on past the expected size
      payload.resize(std::min<uint64_t>(expected, std::max<uint64_t>(2 * produced, 1 << 16)));
    }
    ZSTD_outBuffer out{payload.data(), payload.size(), produced};
    more = ZSTD_decompressStream(dctx.get(), &out, &in);
    if (ZSTD_isError(more)) {
      return Corrupt(absl::StrCat(where, ": zstd: ", ZSTD_getErrorName(more)));
    }
    const bool stalled = out.pos == produced && in.pos == in.size;
    produced = out.pos;
    if (more != 0 && stalled) break;  // the input ended inside the frame
  }
  if (more != 0 || produced != expected) {
    return Corrupt(absl::StrCat(where, ": does not decompress to its ", expected, " bytes"));
  }
  SampleBatch batch;
  batch.layer = f.layer;
  batch.first_sample = f.first_sample;
  batch.count = f.count;
  batch.dim = spec_.dim;
  batch.n_ff = spec_.n_ff;
  const size_t count = static_cast<size_t>(f.count);
  const size_t values = count * static_cast<size_t>(spec_.dim);
  const uint8_t* p = payload.data();
  batch.tokens.resize(count);
  std::memcpy(batch.tokens.data(), p, count * sizeof(int32_t));
  p += count * sizeof(int32_t);
  batch.inputs.resize(values);
  if (spec_.input_dtype == DType::kF16) {
    for (size_t i = 0; i < values; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      batch.inputs[i] = F16ToF32(h);
    }
    p += values * 2;
  } else {
    std::memcpy(batch.inputs.data(), p, values * 4);
    p += values * 4;
  }
  batch.masks.assign(p, static_cast<const uint8_t*>(payload.data() + payload.size()));
  return batch;
}

absl::Status SampleFileReader::VerifyAll() const {
  for (size_t i = 0; i < frames_.size(); ++i) {
    if (absl::StatusOr<SampleBatch> batch = ReadFrame(i); !batch.ok()) return batch.status();
  }
  return absl::OkStatus();
}

}  // namespace pinfer
