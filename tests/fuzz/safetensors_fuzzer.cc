// libFuzzer target: the safetensors header parser (tools/convert/safetensors_file.h). Any input
// must either be rejected with a status or yield tensors whose data lies inside the input.
#include <cstddef>
#include <cstdint>

#include "tools/convert/safetensors_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<pinfer::SafetensorsFile> file =
      pinfer::SafetensorsFile::Parse({data, size}, "fuzz.safetensors");
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : file->tensors()) {
    std::span<const uint8_t> bytes = file->Data(t);
    if (!bytes.empty()) sink = sink + bytes.front() + bytes.back();
    (void)pinfer::SafetensorsDType(t.dtype);
  }
  return 0;
}
