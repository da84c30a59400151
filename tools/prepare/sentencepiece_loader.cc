// pi-prepare's LoadSentencePieceModel. Debian's libsentencepiece carries its own copy of
// protobuf-lite under the same symbol names as the libprotobuf that LibTorch loads, and a process
// that links both dies in static initialization (protobuf's descriptor registration calls into
// SentencePiece's copy). So pi-prepare does not link SentencePiece: when a conversion needs a
// tokenizer.model, this loads the SentencePiece reader as a module beside the executable, with
// RTLD_DEEPBIND so that it and libsentencepiece resolve their symbols among themselves first.
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "tools/convert/sentencepiece_model.h"

namespace pinfer {
namespace {

using LoadFunction = std::string (*)(const std::string&, SentencePieceVocab*);

std::string ModulePath() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path() / "libpinfer_sentencepiece_module.so").string();
}

}  // namespace

std::string LoadSentencePieceModel(const std::string& serialized, SentencePieceVocab* out) {
  static LoadFunction load = nullptr;
  static std::string error;
  if (load == nullptr && error.empty()) {
    const std::string path = ModulePath();
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (module == nullptr) {
      error = std::string("cannot load the SentencePiece reader: ") + dlerror();
    } else if (void* entry = dlsym(module, "pinfer_load_sentencepiece_model"); entry == nullptr) {
      error = path + ": no pinfer_load_sentencepiece_model";
    } else {
      load = reinterpret_cast<LoadFunction>(reinterpret_cast<void* (*)()>(entry)());
    }
  }
  if (load == nullptr) return error;
  return load(serialized, out);
}

}  // namespace pinfer
