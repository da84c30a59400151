// libFuzzer target: the .pi reader (PiFile::FromBytes) and what reads its metadata. Any input must
// either be rejected with a status or yield a file whose every tensor lies inside the input.
#include <cstddef>
#include <cstdint>

#include "format/pi_file.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<std::unique_ptr<pinfer::PiFile>> file =
      pinfer::PiFile::FromBytes({data, size}, "fuzz.pi");
  if (!file.ok()) return 0;
  const pinfer::PiFile& f = **file;
  (void)f.VerifyAll();  // reads every tensor's bytes: ASan catches any out-of-bounds range
  (void)f.ContentDigest();
  for (const auto& [key, value] : f.metadata().entries()) {
    (void)pinfer::Metadata::Render(value, 4);
  }
  (void)pinfer::ModelConfig::FromMetadata(f.metadata());
  (void)pinfer::Vocabulary::FromMetadata(f.metadata());
  return 0;
}
