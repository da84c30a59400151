#include "tools/prepare/stage_record.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"

#include "format/checksum.h"
#include "format/mapped_file.h"
#include "format/pi_file.h"
#include "format/sample_file.h"
#include "runtime/model/model_config.h"

namespace pinfer {

absl::StatusOr<std::string> FileDigest(const std::string& path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
  if (!file.ok()) return file.status();
  return ChecksumHex(Checksum((*file)->bytes()));
}

std::optional<std::string> SamplesDigest(const std::string& path,
                                         const std::optional<std::string>& model_digest) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader =
      SampleFileReader::Open(path, model_digest);
  if (!reader.ok()) return std::nullopt;
  StreamingChecksum digest;
  digest.Update((*reader)->model_digest().data(), (*reader)->model_digest().size());
  for (const SampleFrameInfo& frame : (*reader)->frames()) {
    const int64_t fields[] = {frame.layer, frame.count, frame.first_sample,
                              static_cast<int64_t>(frame.checksum)};
    digest.Update(fields, sizeof(fields));
  }
  return ChecksumHex(digest.Digest());
}

std::optional<ArtifactRecord> ReadArtifactRecord(const std::string& path, ArtifactKind kind) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(path, {.expected_kind = kind});
  if (!file.ok()) return std::nullopt;
  const Metadata& metadata = (*file)->metadata();
  ArtifactRecord record;
  record.content_digest = (*file)->ContentDigestHex();
  if (absl::StatusOr<std::string> v = metadata.GetString(keys::kModelDigest); v.ok()) {
    record.model_digest = *v;
  }
  if (absl::StatusOr<std::string> v = metadata.GetString(keys::kProvenanceArguments); v.ok()) {
    record.arguments = *v;
  }
  if (absl::StatusOr<std::vector<std::string>> v =
          metadata.GetStringArray(keys::kProvenanceSourceDigest);
      v.ok()) {
    record.source_digests = *v;
  }
  if (absl::StatusOr<std::vector<std::string>> v =
          metadata.GetStringArray(keys::kProvenanceSourcePath);
      v.ok()) {
    record.source_paths = *v;
  }
  if (absl::StatusOr<std::vector<int64_t>> v = metadata.GetIntArray(keys::kProvenanceSourceSize);
      v.ok()) {
    record.source_sizes = *v;
  }
  if (absl::StatusOr<std::vector<int64_t>> v = metadata.GetIntArray(keys::kProvenanceSourceMtime);
      v.ok()) {
    record.source_mtimes_ns = *v;
  }
  return record;
}

absl::StatusOr<std::vector<std::string>> SourceDigests(
    const std::vector<std::string>& files, const std::optional<ArtifactRecord>& existing) {
  std::vector<std::string> digests;
  for (const std::string& file : files) {
    struct stat st {};
    if (stat(file.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat(file, ": ", std::strerror(errno)));
    }
    const std::string path = std::filesystem::absolute(file).lexically_normal().string();
    const int64_t size = static_cast<int64_t>(st.st_size);
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    std::optional<std::string> recorded;
    if (existing && existing->source_digests.size() == existing->source_paths.size() &&
        existing->source_sizes.size() == existing->source_paths.size() &&
        existing->source_mtimes_ns.size() == existing->source_paths.size()) {
      for (size_t i = 0; i < existing->source_paths.size(); ++i) {
        if (existing->source_paths[i] == path && existing->source_sizes[i] == size &&
            existing->source_mtimes_ns[i] == mtime) {
          recorded = existing->source_digests[i];
          break;
        }
      }
    }
    if (recorded) {
      digests.push_back(*recorded);
      continue;
    }
    absl::StatusOr<std::string> digest = FileDigest(file);
    if (!digest.ok()) return digest.status();
    digests.push_back(*digest);
  }
  return digests;
}

std::optional<std::string> SamplesArguments(const std::string& path,
                                            const std::string& model_digest) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  absl::StatusOr<std::unique_ptr<SampleFileReader>> reader =
      SampleFileReader::Open(path, model_digest);
  if (!reader.ok()) return std::nullopt;
  absl::StatusOr<std::string> arguments =
      (*reader)->metadata().GetString(keys::kProvenanceArguments);
  if (!arguments.ok()) return std::nullopt;
  return *arguments;
}

}  // namespace pinfer
