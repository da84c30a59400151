#include "tools/convert/converter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/checksum.h"
#include "format/output_check.h"
#include "format/pi_writer.h"
#include "format/quant.h"
#include "format/strings.h"
#include "runtime/common/cli_common.h"
#include "runtime/model/tensor_names.h"

namespace pinfer {

int64_t SourceTensor::rows() const {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= static_cast<int64_t>(shape[i]);
  return rows;
}

namespace {

// The matrices that only dot products read (MatVec/MatMul/GatherMatMul: q4_0x16 pays there). The
// embedding table is read by row lookups (and by dot products only when it is the classifier);
// ffn_down_t by the transposed product.
bool ReadByDotProducts(const std::string& name, bool classifier) {
  if (classifier) return true;
  for (const char* suffix :
       {".attn_q", ".attn_k", ".attn_v", ".attn_output", ".ffn_gate", ".ffn_up"}) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

}  // namespace

DType OutputDType(const SourceTensor& tensor, bool classifier, const ConvertOptions& options) {
  if (tensor.shape.size() == 1) return DType::kF32;
  if (classifier && options.dtype == DType::kQ4_0 && !options.pure) return DType::kQ8_0;
  const DType dtype = options.dtype.value_or(tensor.native_dtype);
  if (dtype == DType::kQ4_0 && options.q4_0x16 && ReadByDotProducts(tensor.name, classifier)) {
    return DType::kQ4_0x16;
  }
  return dtype;
}

namespace {

absl::StatusOr<std::string> DigestFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  return ChecksumHex(Checksum((*file)->bytes()));
}

// Rows per conversion chunk: about 8 MiB of f32, so memory stays bounded for any model.
int64_t ChunkRows(int64_t cols) { return std::max<int64_t>(1, (int64_t{8} << 20) / (4 * cols)); }

absl::Status WriteTensor(const SourceTensor& tensor, DType dtype, Q4Scales q4_scales,
                         PiWriter& writer, ProgressBar& progress, uint64_t& done) {
  const int64_t rows = tensor.rows(), cols = tensor.cols();
  absl::StatusOr<uint64_t> row_bytes = RowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor.name,
                                                   "' cannot be stored as ", Sv(DTypeName(dtype)),
                                                   ": ", row_bytes.status().message()));
  }
  const int64_t chunk = ChunkRows(cols);
  // q4_0 source blocks reordered into q4_0x16: as lossless as a copy.
  const bool reorder_q4 = dtype == DType::kQ4_0x16 && tensor.native_dtype == DType::kQ4_0;
  if ((dtype == tensor.native_dtype || reorder_q4) && tensor.read_native) {
    // Lossless: the source bytes already are our layout in the output dtype.
    std::vector<uint8_t> bytes(static_cast<size_t>(chunk * *row_bytes));
    std::vector<uint8_t> reordered(reorder_q4 ? bytes.size() : 0);
    for (int64_t first = 0; first < rows; first += chunk) {
      const int64_t count = std::min(chunk, rows - first);
      std::span<uint8_t> out(bytes.data(), static_cast<size_t>(count * *row_bytes));
      if (absl::Status s = tensor.read_native(first, count, out); !s.ok()) return s;
      if (reorder_q4) {
        ConvertQ4_0ToQ4_0x16(out.data(), reordered.data(), static_cast<size_t>(count),
                             static_cast<size_t>(cols));
        out = std::span<uint8_t>(reordered.data(), out.size());
      }
      if (absl::Status s = writer.Append(tensor.name, out); !s.ok()) return s;
      done += out.size();
      progress.Update(done);
    }
    return absl::OkStatus();
  }
  std::vector<float> values(static_cast<size_t>(chunk * cols));
  std::vector<uint8_t> encoded(static_cast<size_t>(chunk * *row_bytes));
  for (int64_t first = 0; first < rows; first += chunk) {
    const int64_t count = std::min(chunk, rows - first);
    if (absl::Status s = tensor.read_rows(first, count, values.data()); !s.ok()) return s;
    for (int64_t r = 0; r < count; ++r) {
      if (absl::Status s = EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), dtype,
                                     encoded.data() + r * *row_bytes, q4_scales);
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s = writer.Append(tensor.name, encoded.data(), count * *row_bytes); !s.ok()) {
      return s;
    }
    done += count * *row_bytes;
    progress.Update(done);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConvertReport> ConvertModel(SourceModel& source, const std::string& output_path,
                                           const ConvertOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  // Errors name the source (its main file: the checkpoint, the GGUF, config.json).
  const std::string name = source.source_files.empty() ? "source" : source.source_files.front();
  auto named = [&name](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(name, ": ", s.message()));
  };
  if (absl::Status s = source.config.Validate(); !s.ok()) return named(s);
  if (absl::Status s = source.vocabulary.Validate(); !s.ok()) return named(s);
  if (static_cast<int64_t>(source.vocabulary.size()) != source.config.vocab_size) {
    return named(absl::InvalidArgumentError(
        absl::StrCat("the tokenizer has ", source.vocabulary.size(),
                     " tokens but the model's vocabulary is ", source.config.vocab_size)));
  }
  // Writing over an input would destroy it (the rename replaces the file being read).
  {
    std::vector<InputFile> inputs;
    for (const std::string& file : source.source_files) inputs.push_back({"the source file", file});
    const OutputFile outputs[] = {{"-o", output_path, ArtifactKind::kModel}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }

  Metadata metadata;
  source.config.ToMetadata(metadata);
  source.vocabulary.ToMetadata(metadata);
  metadata.SetString(keys::kProvenanceTool, "pi-convert");
  metadata.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  metadata.SetString(keys::kProvenanceArguments, options.command_line);
  metadata.SetString("provenance.source_format", source.format);
  std::vector<std::string> names, digests, paths;
  std::vector<int64_t> sizes, mtimes;
  for (const std::string& file : source.source_files) {
    // Stat before reading: a file changed while it is digested then looks changed next time.
    struct stat st {};
    if (stat(file.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(file, ": ", std::strerror(errno)));
    }
    absl::StatusOr<std::string> digest = DigestFile(file);
    if (!digest.ok()) return digest.status();
    names.push_back(std::filesystem::path(file).filename().string());
    digests.push_back(*digest);
    paths.push_back(std::filesystem::absolute(file).lexically_normal().string());
    sizes.push_back(static_cast<int64_t>(st.st_size));
    mtimes.push_back(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  }
  metadata.SetStringArray(keys::kProvenanceSource, names);
  metadata.SetStringArray(keys::kProvenanceSourceDigest, digests);
  metadata.SetStringArray(keys::kProvenanceSourcePath, paths);
  metadata.SetIntArray(keys::kProvenanceSourceSize, sizes);
  metadata.SetIntArray(keys::kProvenanceSourceMtime, mtimes);

  std::vector<TensorSpec> specs;
  std::vector<DType> dtypes;
  const bool tied =
      std::none_of(source.tensors.begin(), source.tensors.end(),
                   [](const SourceTensor& t) { return t.name == tensor_names::kOutput; });
  for (const SourceTensor& t : source.tensors) {
    const bool classifier =
        t.name == tensor_names::kOutput || (tied && t.name == tensor_names::kTokenEmbedding);
    dtypes.push_back(OutputDType(t, classifier, options));
    specs.push_back({t.name, dtypes.back(), t.shape});
  }
  absl::StatusOr<std::unique_ptr<PiWriter>> writer =
      PiWriter::Create(output_path, ArtifactKind::kModel, std::move(metadata), std::move(specs));
  if (!writer.ok()) return writer.status();

  ProgressBar::SetEnabled(options.progress);
  ProgressBar progress("converting", (*writer)->total_bytes(), "B");
  uint64_t done = 0;
  for (size_t i = 0; i < source.tensors.size(); ++i) {
    if (absl::Status s =
            WriteTensor(source.tensors[i], dtypes[i], options.q4_scales, **writer, progress, done);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = (*writer)->Commit(); !s.ok()) return s;
  progress.Update((*writer)->total_bytes());
  progress.Finish();

  ConvertReport report;
  report.output_bytes = (*writer)->total_bytes();
  report.tensors = static_cast<int>(source.tensors.size());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace pinfer
