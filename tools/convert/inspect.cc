#include "tools/convert/inspect.h"

#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "format/checksum.h"
#include "format/metadata.h"
#include "format/pi_file.h"
#include "format/strings.h"
#include "nlohmann/json.hpp"
#include "runtime/common/cli_common.h"
#include "runtime/model/model.h"

namespace pinfer {
namespace {

constexpr size_t kArrayItems = 8;  // array elements shown before "... (n items)"

// A metadata value for the JSON report: scalars as they are, arrays as {count, head}.
nlohmann::json ValueJson(const MetadataValue& value) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int64_t> ||
                      std::is_same_v<T, double> || std::is_same_v<T, std::string>) {
          return v;
        } else {
          nlohmann::json head = nlohmann::json::array();
          for (size_t i = 0; i < v.size() && i < kArrayItems; ++i) head.push_back(v[i]);
          return {{"count", v.size()}, {"head", head}};
        }
      },
      value);
}

std::string Abbreviate(std::string text, size_t max_chars) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (text.size() > max_chars) text = absl::StrCat(text.substr(0, max_chars), "...");
  return text;
}

}  // namespace

absl::StatusOr<InspectReport> InspectPiFile(const std::string& path,
                                            const InspectOptions& options) {
  absl::StatusOr<std::unique_ptr<PiFile>> opened = PiFile::Open(path);
  if (!opened.ok()) return opened.status();
  const PiFile& file = **opened;
  const PiHeader& h = file.header();
  InspectReport report;

  if (options.verify) {
    uint64_t total = 0, done = 0;
    for (const TensorInfo& t : file.tensors()) total += t.size;
    ProgressBar::SetEnabled(options.progress);
    ProgressBar progress("verifying", total, "B");
    for (const TensorInfo& t : file.tensors()) {
      if (absl::Status s = file.VerifyTensor(t); !s.ok()) {
        report.failed.push_back(t.name);
        if (report.first_error.empty()) report.first_error = std::string(s.message());
      }
      ++report.verified;
      done += t.size;
      progress.Update(done);
    }
    progress.Finish();
    if (file.kind() == ArtifactKind::kModel) {
      ModelLoadOptions load;
      load.require_vocabulary = false;  // token-id-only models (pi-synth) are sound too
      absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path, load);
      if (!model.ok()) report.model_error = std::string(model.status().message());
    }
  }

  if (options.json) {
    nlohmann::json out;
    out["file"] = path;
    out["version"] = absl::StrCat(file.version_major(), ".", file.version_minor());
    out["kind"] = std::string(ArtifactKindName(file.kind()));
    out["file_size"] = file.file_size();
    out["header"] = {{"metadata_offset", h.metadata_offset},
                     {"metadata_size", h.metadata_size},
                     {"metadata_count", h.metadata_count},
                     {"index_offset", h.index_offset},
                     {"index_size", h.index_size},
                     {"tensor_count", h.tensor_count},
                     {"data_offset", h.data_offset},
                     {"tensor_alignment", h.tensor_alignment},
                     {"header_checksum", ChecksumHex(h.header_checksum)}};
    out["content_digest"] = file.ContentDigestHex();
    nlohmann::json metadata = nlohmann::json::object();
    for (const auto& [key, value] : file.metadata().entries()) {
      metadata[key] = {{"type", std::string(MetadataTypeName(TypeOf(value)))},
                       {"value", ValueJson(value)}};
    }
    out["metadata"] = metadata;
    nlohmann::json tensors = nlohmann::json::array();
    for (const TensorInfo& t : file.tensors()) {
      tensors.push_back({{"name", t.name},
                         {"dtype", std::string(DTypeName(t.dtype))},
                         {"shape", t.shape},
                         {"offset", t.offset},
                         {"size", t.size},
                         {"checksum", ChecksumHex(t.checksum)}});
    }
    out["tensors"] = tensors;
    if (options.verify) {
      out["verify"] = {
          {"checked", report.verified}, {"failed", report.failed}, {"sound", report.sound()}};
      if (!report.model_error.empty()) out["verify"]["model_error"] = report.model_error;
    }
    // Tokenizer pieces need not be valid UTF-8 (byte pieces): replace, never throw.
    report.text = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return report;
  }

  std::string& s = report.text;
  absl::StrAppendFormat(&s, "file      %s\n", path);
  absl::StrAppendFormat(&s, "format    .pi %d.%d, %s artifact, %s (%d bytes)\n",
                        file.version_major(), file.version_minor(), ArtifactKindName(file.kind()),
                        FormatBytes(file.file_size()), file.file_size());
  absl::StrAppendFormat(&s,
                        "layout    metadata %d bytes at %d, index %d bytes at %d, data at %d, "
                        "alignment %d\n",
                        h.metadata_size, h.metadata_offset, h.index_size, h.index_offset,
                        h.data_offset, h.tensor_alignment);
  absl::StrAppendFormat(&s, "checksum  header %s (verified on open), content digest %s\n",
                        ChecksumHex(h.header_checksum), file.ContentDigestHex());
  absl::StrAppendFormat(&s, "\nmetadata (%d entries)\n", file.metadata().size());
  size_t key_width = 0;
  for (const auto& [key, value] : file.metadata().entries())
    key_width = std::max(key_width, key.size());
  for (const auto& [key, value] : file.metadata().entries()) {
    absl::StrAppendFormat(&s, "  %-*s  %-9s  %s\n", static_cast<int>(key_width), key,
                          MetadataTypeName(TypeOf(value)),
                          Abbreviate(Metadata::Render(value, kArrayItems), 160));
  }
  size_t name_width = 4;
  for (const TensorInfo& t : file.tensors()) name_width = std::max(name_width, t.name.size());
  absl::StrAppendFormat(&s, "\ntensors (%d)\n", file.tensors().size());
  absl::StrAppendFormat(&s, "  %-*s  %-7s  %-14s  %12s  %12s  %s\n", static_cast<int>(name_width),
                        "name", "dtype", "shape", "offset", "bytes", "checksum");
  for (const TensorInfo& t : file.tensors()) {
    absl::StrAppendFormat(&s, "  %-*s  %-7s  %-14s  %12d  %12d  %s\n", static_cast<int>(name_width),
                          t.name, DTypeName(t.dtype), t.ShapeString(), t.offset, t.size,
                          ChecksumHex(t.checksum));
  }
  if (options.verify) {
    if (!report.model_error.empty()) {
      absl::StrAppendFormat(&s, "\nverify    the runtime cannot load this model: %s\n",
                            report.model_error);
    } else if (report.sound()) {
      absl::StrAppendFormat(&s, "\nverify    all %d tensor checksums match: the file is sound\n",
                            report.verified);
    } else {
      absl::StrAppendFormat(&s, "\nverify    %d of %d tensors fail their checksum: %s\n",
                            report.failed.size(), report.verified,
                            absl::StrJoin(report.failed, ", "));
    }
  }
  return report;
}

}  // namespace pinfer
