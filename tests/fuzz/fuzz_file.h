// The readers under fuzz open files by path (they map them), so each input is written to a file in
// a scratch directory made once per process (on tmpfs when /dev/shm exists, so that no disk I/O
// slows the runs), named by its pid. It is removed at exit, or, when the process crashed, by the
// next fuzz process to start.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pinfer::fuzz {

// The scratch directory of this process.
const std::string& ScratchDir();

// Writes `bytes` to ScratchDir()/name (replacing it) and returns the path. Aborts when the file
// cannot be written: a fuzz run that silently tests nothing would pass.
std::string WriteScratchFile(std::string_view name, std::span<const uint8_t> bytes);

}  // namespace pinfer::fuzz
