#include "tests/fuzz/fuzz_file.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pinfer::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr char kPrefix[] = "pinfer_fuzz_";

// A process that crashed (the input libFuzzer keeps) or ran as a -fork child ends without
// running atexit handlers, so its directory stays behind: removed here by the next process, once
// the pid in its name is no longer running.
void RemoveStaleDirs(const fs::path& base) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(base, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with(kPrefix)) continue;
    const long pid = std::strtol(name.c_str() + sizeof(kPrefix) - 1, nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      fs::remove_all(e.path(), ec);
    }
  }
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const fs::path base =
        fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    RemoveStaleDirs(base);
    auto* path = new std::string((base / (kPrefix + std::to_string(getpid()))).string());
    std::error_code ec;
    fs::remove_all(*path, ec);  // a dead process's, with our pid
    if (!fs::create_directory(*path, ec)) {
      std::fprintf(stderr, "fuzz: cannot create %s: %s\n", path->c_str(), ec.message().c_str());
      std::abort();
    }
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(*dir, ignored);
    });
    return path;
  }();
  return *dir;
}

std::string WriteScratchFile(std::string_view name, std::span<const uint8_t> bytes) {
  std::string path = ScratchDir() + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace pinfer::fuzz
