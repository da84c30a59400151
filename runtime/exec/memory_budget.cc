#include "runtime/exec/memory_budget.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace pinfer {
namespace {

std::optional<uint64_t> ReadNumber(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    return std::stoull(text);
  } catch (...) {
    return std::nullopt;
  }
}

std::optional<uint64_t> MemAvailable() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return std::nullopt;
}

// This process's cgroup path ("0::/path" for v2, "N:memory:/path" for v1).
std::optional<uint64_t> CgroupHeadroom() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    std::optional<uint64_t> limit, usage;
    if (controllers.empty()) {  // v2
      limit = ReadNumber("/sys/fs/cgroup" + path + "/memory.max");
      usage = ReadNumber("/sys/fs/cgroup" + path + "/memory.current");
    } else if (controllers.find("memory") != std::string::npos) {  // v1
      limit = ReadNumber("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes");
      usage = ReadNumber("/sys/fs/cgroup/memory" + path + "/memory.usage_in_bytes");
    }
    // v1 reports "no limit" as a huge number; anything above 2^60 is no limit.
    if (limit && usage && *limit < (uint64_t{1} << 60)) {
      return *limit > *usage ? *limit - *usage : 0;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> AvailableMemoryBytes() {
  const std::optional<uint64_t> system = MemAvailable(), cgroup = CgroupHeadroom();
  if (system && cgroup) return std::min(*system, *cgroup);
  return system ? system : cgroup;
}

}  // namespace pinfer
