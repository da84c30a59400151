#include "tools/convert/source_reader.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "format/file_access.h"
#include "format/pi_format.h"
#include "tools/convert/gguf_file.h"
#include "tools/convert/gguf_source.h"
#include "tools/convert/hf_source.h"
#include "tools/convert/llama2c_source.h"

namespace pinfer {

absl::StatusOr<SourceModel> ReadSource(const std::string& source, const SourceOptions& options) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(source, error);
  if (error || !fs::exists(status)) {
    return absl::NotFoundError(absl::StrCat(source, ": no such file or directory"));
  }
  if (fs::is_directory(status)) {
    return ReadHfDirectory(source, options.tokenizer_path, options.activations);
  }
  // A safetensors file names its checkpoint directory.
  if (fs::path(source).extension() == ".safetensors" &&
      fs::exists(fs::path(source).parent_path() / "config.json")) {
    return ReadHfDirectory(fs::path(source).parent_path().string(), options.tokenizer_path,
                           options.activations);
  }
  // Unreadable files and FIFOs are refused here with the reason, not as an unknown format.
  absl::StatusOr<std::string> head_read = ReadRegularFile(source, 8);
  if (!head_read.ok()) return head_read.status();
  const std::string& head = *head_read;
  if (LooksLikeGguf({reinterpret_cast<const uint8_t*>(head.data()), head.size()})) {
    if (!options.tokenizer_path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--tokenizer ", options.tokenizer_path,
                                                     ": a GGUF file carries its own tokenizer"));
    }
    return ReadGguf(source, options.activations);
  }
  if (head.size() == 8 && std::memcmp(head.data(), kPiMagic, 8) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": is already a .pi file (see pi-inspect)"));
  }
  if (LooksLikeLlama2c(source)) {
    Llama2cOptions llama2c;
    llama2c.tokenizer_path = options.tokenizer_path;
    llama2c.ffn_act = options.activations.ffn_act.value_or(Activation{ActivationKind::kSilu, 0});
    llama2c.norm_act = options.activations.norm_act.value_or(Activation{ActivationKind::kNone, 0});
    return ReadLlama2c(source, llama2c);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(source,
                   ": unrecognised model format (expected a GGUF file, a llama2.c checkpoint or a "
                   "HuggingFace directory)"));
}

}  // namespace pinfer
