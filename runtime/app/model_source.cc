#include "runtime/app/model_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/checksum.h"
#include "format/dtype.h"
#include "format/pi_file.h"
#include "format/pi_format.h"
#include "runtime/app/sibling_tool.h"
#include "runtime/model/model_config.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

void Log(std::string_view prefix, const std::string& line) {
  std::fprintf(stderr, "%.*s%s\n", static_cast<int>(prefix.size()), prefix.data(), line.c_str());
}

fs::path AbsolutePath(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" names the directory "dir"
  return p;
}

bool StartsWithPiMagic(const std::string& path) {
  char head[sizeof(kPiMagic)] = {};
  std::ifstream in(path, std::ios::binary);
  return in.read(head, sizeof(head)) && std::memcmp(head, kPiMagic, sizeof(head)) == 0;
}

// Whether files can really be created in `dir`: access() says yes to root on a read-only folder
// (chmod 555), so a probe file is made and removed.
bool CanCreateFilesIn(const fs::path& dir) {
  std::string probe = (dir / ".pinfer-probe-XXXXXX").string();
  const int fd = mkstemp(probe.data());
  if (fd < 0) return false;
  close(fd);
  unlink(probe.c_str());
  return true;
}

// $XDG_CACHE_HOME/pinfer, else ~/.cache/pinfer, created when missing.
absl::StatusOr<fs::path> UserCacheDir() {
  fs::path root;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && xdg[0] == '/') {
    root = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    root = fs::path(home) / ".cache";
  } else {
    return absl::FailedPreconditionError("neither $XDG_CACHE_HOME nor $HOME is set");
  }
  const fs::path dir = root / "pinfer";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat(dir.string(), ": ", ec.message()));
  if (!CanCreateFilesIn(dir)) {
    return absl::FailedPreconditionError(absl::StrCat(dir.string(), " is not writable"));
  }
  return dir;
}

// Where the conversion of `source` (absolute) is cached: beside it, else in the user's cache.
absl::StatusOr<fs::path> CachePath(const fs::path& source, const std::string& dtype,
                                   const std::string& model_flag) {
  const std::string name =
      absl::StrCat(source.filename().string(), dtype.empty() ? "" : ".", dtype, ".pi");
  if (CanCreateFilesIn(source.parent_path())) return source.parent_path() / name;
  absl::StatusOr<fs::path> dir = UserCacheDir();
  if (!dir.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "-m ", model_flag, ": nowhere to cache its conversion: ", source.parent_path().string(),
        " is not writable, and ", dir.status().message()));
  }
  const std::string& text = source.string();
  return *dir / absl::StrCat(ChecksumHex(Checksum(text.data(), text.size())), "-", name);
}

// Why the cached conversion `cache` is not that of `source` as it is now (with `tokenizer`,
// absolute or empty), or "" when it is.
std::string StaleReason(const fs::path& cache, const fs::path& source, bool source_is_dir,
                        const std::string& tokenizer) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(cache.string());
  if (!file.ok()) return std::string(file.status().message());
  const Metadata& m = (*file)->metadata();
  absl::StatusOr<std::vector<std::string>> paths = m.GetStringArray(keys::kProvenanceSourcePath);
  absl::StatusOr<std::vector<int64_t>> sizes = m.GetIntArray(keys::kProvenanceSourceSize);
  absl::StatusOr<std::vector<int64_t>> mtimes = m.GetIntArray(keys::kProvenanceSourceMtime);
  if (!paths.ok() || !sizes.ok() || !mtimes.ok() || paths->empty() ||
      sizes->size() != paths->size() || mtimes->size() != paths->size()) {
    return "it records no source files with their sizes and times";
  }
  bool has_source = source_is_dir;
  bool has_tokenizer = tokenizer.empty();
  for (size_t i = 0; i < paths->size(); ++i) {
    const std::string& path = (*paths)[i];
    const bool is_source = path == source.string();
    const bool is_tokenizer = !tokenizer.empty() && path == tokenizer;
    const bool in_dir = source_is_dir && fs::path(path).parent_path() == source;
    if (!is_source && !is_tokenizer && !in_dir) {
      return absl::StrCat("it was made with ", path, ", not given now");
    }
    has_source |= is_source;
    has_tokenizer |= is_tokenizer;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return absl::StrCat(path, ": ", std::strerror(errno));
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (st.st_size != (*sizes)[i] || mtime != (*mtimes)[i]) {
      return absl::StrCat(path, " changed (size or modification time)");
    }
  }
  if (!has_source) return "it was made from another source";
  if (!has_tokenizer) return absl::StrCat("it was made without the tokenizer ", tokenizer);
  return "";
}

}  // namespace

absl::StatusOr<std::string> ResolveModelFile(const std::string& model,
                                             const ModelSourceFlags& flags,
                                             std::string_view log_prefix) {
  std::error_code ec;
  const fs::file_status status = fs::status(model, ec);
  const bool is_dir = !ec && fs::is_directory(status);
  const bool is_file = !ec && fs::is_regular_file(status);
  // A safetensors file names its checkpoint directory (as for pi-convert).
  const fs::path beside = fs::path(model).parent_path();
  if (is_file && fs::path(model).extension() == ".safetensors" &&
      fs::exists((beside.empty() ? fs::path(".") : beside) / "config.json", ec)) {
    return ResolveModelFile(beside.empty() ? "." : beside.string(), flags, log_prefix);
  }
  if (!is_dir && (!is_file || model.ends_with(".pi") || StartsWithPiMagic(model))) {
    // A .pi (or what the loader will refuse with its own reason: a missing file, a FIFO).
    if (!flags.tokenizer_path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tokenizer ", flags.tokenizer_path, ": ", model,
                       " is a .pi model, which carries its tokenizer (--tokenizer is for llama2.c "
                       "checkpoints)"));
    }
    if (!flags.dtype.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--dtype ", flags.dtype, ": ", model,
          " is already a .pi model (--dtype picks the dtype of a GGUF, llama2.c or HuggingFace "
          "model's conversion; convert it again with pi-convert --dtype)"));
    }
    return model;
  }
  if (is_dir && !fs::exists(fs::path(model) / "config.json", ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("-m ", model,
                     ": a directory without config.json (expected a HuggingFace checkpoint: "
                     "config.json + safetensors)"));
  }
  std::string dtype;
  if (!flags.dtype.empty()) {
    absl::StatusOr<DType> parsed = ParseWeightDType(flags.dtype);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--dtype: ", parsed.status().message()));
    }
    dtype = std::string(DTypeName(*parsed));
  }
  std::string tokenizer;
  if (!flags.tokenizer_path.empty()) {
    if (!fs::is_regular_file(flags.tokenizer_path, ec)) {
      return absl::NotFoundError(
          absl::StrCat("--tokenizer ", flags.tokenizer_path, ": no such file"));
    }
    tokenizer = AbsolutePath(flags.tokenizer_path).string();
  }
  const fs::path source = AbsolutePath(model);
  absl::StatusOr<fs::path> cache = CachePath(source, dtype, model);
  if (!cache.ok()) return cache.status();

  if (fs::exists(*cache, ec)) {
    const std::string stale = StaleReason(*cache, source, is_dir, tokenizer);
    if (stale.empty()) {
      Log(log_prefix, absl::StrCat("using the cached conversion ", cache->string(), " of ", model));
      return cache->string();
    }
    Log(log_prefix, absl::StrCat("the cached conversion ", cache->string(), " is stale (", stale,
                                 "): converting ", model, " again"));
  } else {
    Log(log_prefix, absl::StrCat("converting ", model, " into ", cache->string(),
                                 " (once: later runs use it)"));
  }
  const std::string purpose = absl::StrCat("-m ", model);
  absl::StatusOr<std::string> pi_convert = FindSiblingTool("pi-convert", purpose);
  if (!pi_convert.ok()) return pi_convert.status();
  std::vector<std::string> argv = {*pi_convert, source.string()};
  if (!tokenizer.empty()) argv.insert(argv.end(), {"--tokenizer", tokenizer});
  if (!dtype.empty()) argv.insert(argv.end(), {"--dtype", dtype});
  argv.insert(argv.end(), {"-o", cache->string()});
  if (absl::Status s = RunSiblingTool(argv, {.purpose = purpose, .forward_stderr = true});
      !s.ok()) {
    // A stale cache is of no use any more; pi-convert itself never leaves a partial one.
    fs::remove(*cache, ec);
    return s;
  }
  return cache->string();
}

}  // namespace pinfer
