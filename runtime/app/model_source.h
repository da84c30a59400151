// -m accepts any model a user has, not only a .pi: a GGUF (PowerInfer's too), a llama2.c
// checkpoint (with --tokenizer) or a HuggingFace directory (config.json + safetensors). The first
// run converts it once with the pi-convert program (run as a sibling program, sibling_tool.h:
// runtime/ never links tools/), its progress bar on our stderr, into a cached .pi:
//
//   beside the source, when its folder is writable:   <source name>[.<dtype>].pi
//     (models/stories260K.gguf -> models/stories260K.gguf.pi; a directory ~/m/Llama-7B ->
//     ~/m/Llama-7B.pi)
//   else $XDG_CACHE_HOME/pinfer (default ~/.cache/pinfer):
//     <16 hex digits: XXH3 of the source's absolute path>-<source name>[.<dtype>].pi
//
// The artifacts found beside a model (profile, predictor, plan: artifacts.h) are looked for beside
// that cached .pi (stories260K.gguf.profile.pi ...).
//
// The cache's key is what pi-convert records in it (provenance.source_path, _size, _mtime_ns, with
// the content digest provenance.source_digest): every source file's absolute path, size and
// modification time, so an unchanged source is recognised without reading it, and a changed or
// touched one (another size or mtime) is converted again; the --tokenizer file is part of it, and
// --dtype is part of the name. pi-convert writes atomically (temp file, rename; its temp file is
// removed on SIGINT), so an interrupted first run leaves no cache; a failed one removes the stale
// cache it was replacing.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pinfer {

struct ModelSourceFlags {
  std::string tokenizer_path;  // --tokenizer: a llama2.c checkpoint's tokenizer.bin
  std::string dtype;           // --dtype: the weights' dtype of the conversion (default: source's)
};

// The .pi to load for -m `model`: itself when it is a .pi file (its magic, or a .pi name: a bad one
// then gets the reader's error), or one that does not exist (the loader says so); else the cached
// conversion, made first when missing or stale. Each step it takes (converting, reusing) is one
// line on stderr after `log_prefix`. Errors name the file or the flag, on one line.
absl::StatusOr<std::string> ResolveModelFile(const std::string& model,
                                             const ModelSourceFlags& flags,
                                             std::string_view log_prefix);

}  // namespace pinfer
