#include "format/checksum.h"

#include <xxhash.h>

#include "absl/strings/str_format.h"

namespace pinfer {

struct StreamingChecksum::State {
  XXH3_state_t* xxh = nullptr;
  ~State() { XXH3_freeState(xxh); }
};

uint64_t Checksum(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

std::string ChecksumHex(uint64_t checksum) { return absl::StrFormat("%016x", checksum); }

StreamingChecksum::StreamingChecksum() : state_(std::make_unique<State>()) {
  state_->xxh = XXH3_createState();
  XXH3_64bits_reset(state_->xxh);
}
StreamingChecksum::~StreamingChecksum() = default;
StreamingChecksum::StreamingChecksum(StreamingChecksum&&) noexcept = default;
StreamingChecksum& StreamingChecksum::operator=(StreamingChecksum&&) noexcept = default;

void StreamingChecksum::Update(std::span<const uint8_t> bytes) {
  XXH3_64bits_update(state_->xxh, bytes.data(), bytes.size());
}

uint64_t StreamingChecksum::Digest() const { return XXH3_64bits_digest(state_->xxh); }

}  // namespace pinfer
