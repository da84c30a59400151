#include "tools/solve_placement/hardware_model.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/atomic_file.h"
#include "format/file_access.h"
#include "format/strings.h"
#include "nlohmann/json.hpp"

namespace pinfer {
namespace {

struct Preset {
  const char* name;
  double peak_bandwidth;       // B/s, data sheet
  double peak_link_bandwidth;  // B/s per direction
};
// Sources in the header comment.
constexpr Preset kPresets[] = {
    {"rtx4090", 1008e9, 31.5e9},
    {"a100", 2039e9, 31.5e9},
    {"h100", 3350e9, 63e9},
};
constexpr double kAchievableFraction = 0.8;

using json = nlohmann::json;

// Reads an optional number field, positive (bandwidths) or non-negative (latencies); `scale`
// converts the file's unit to SI.
absl::Status ReadNumber(const json& object, const char* key, double scale, const std::string& where,
                        double& out, bool zero_allowed = false) {
  if (!object.contains(key)) return absl::OkStatus();
  const json& v = object.at(key);
  const bool ok = v.is_number() && std::isfinite(v.get<double>()) &&
                  (zero_allowed ? v.get<double>() >= 0 : v.get<double>() > 0);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ".", key, " must be a ", zero_allowed ? "non-negative" : "positive", " number"));
  }
  out = v.get<double>() * scale;
  return absl::OkStatus();
}

absl::Status CheckKeys(const json& object, std::initializer_list<const char*> allowed,
                       const std::string& where) {
  if (!object.is_object())
    return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool known = false;
    for (const char* k : allowed) known = known || it.key() == k;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(where, " has an unknown field '", it.key(),
                                                     "' (known: ", absl::StrJoin(allowed, ", "),
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseHardware(const json& root, HardwareModel& hw) {
  if (absl::Status s = CheckKeys(root, {"name", "gpu", "cpu", "link"}, "the file"); !s.ok())
    return s;
  if (root.contains("gpu")) {
    const json& gpu = root.at("gpu");
    if (absl::Status s = CheckKeys(gpu, {"name", "bandwidth_gbps", "layer_overhead_us"}, "gpu");
        !s.ok()) {
      return s;
    }
    if (gpu.contains("name")) {
      if (!gpu.at("name").is_string())
        return absl::InvalidArgumentError("gpu.name must be a string");
      absl::StatusOr<HardwareModel> preset = GpuPreset(gpu.at("name").get<std::string>());
      if (!preset.ok()) return preset.status();
      hw = *preset;
    }
    for (absl::Status s :
         {ReadNumber(gpu, "bandwidth_gbps", 1e9, "gpu", hw.gpu_bandwidth),
          ReadNumber(gpu, "layer_overhead_us", 1e-6, "gpu", hw.gpu_layer_overhead_s, true)}) {
      if (!s.ok()) return s;
    }
  }
  if (root.contains("cpu")) {
    const json& cpu = root.at("cpu");
    if (absl::Status s =
            CheckKeys(cpu, {"bandwidth_gbps", "sparse_bandwidth_gbps", "source"}, "cpu");
        !s.ok()) {
      return s;
    }
    for (absl::Status s :
         {ReadNumber(cpu, "bandwidth_gbps", 1e9, "cpu", hw.cpu_bandwidth),
          ReadNumber(cpu, "sparse_bandwidth_gbps", 1e9, "cpu", hw.cpu_sparse_bandwidth)}) {
      if (!s.ok()) return s;
    }
    if (cpu.contains("source")) {
      if (!cpu.at("source").is_string()) {
        return absl::InvalidArgumentError("cpu.source must be a string");
      }
      hw.cpu_source = cpu.at("source").get<std::string>();
    }
  }
  if (root.contains("link")) {
    const json& link = root.at("link");
    if (absl::Status s = CheckKeys(link, {"bandwidth_gbps", "latency_us", "sync_us"}, "link");
        !s.ok()) {
      return s;
    }
    for (absl::Status s : {ReadNumber(link, "bandwidth_gbps", 1e9, "link", hw.link_bandwidth),
                           ReadNumber(link, "latency_us", 1e-6, "link", hw.link_latency_s, true),
                           ReadNumber(link, "sync_us", 1e-6, "link", hw.sync_s, true)}) {
      if (!s.ok()) return s;
    }
  }
  if (root.contains("name")) {
    if (!root.at("name").is_string()) return absl::InvalidArgumentError("name must be a string");
    hw.name = root.at("name").get<std::string>();
  } else {
    hw.name = hw.gpu;
  }
  return hw.Validate();
}

}  // namespace

double HardwareModel::SyncSeconds(int64_t dim) const {
  const double vector_bytes = 4.0 * static_cast<double>(dim);
  return 2 * (link_latency_s + vector_bytes / link_bandwidth) + sync_s;
}

absl::Status HardwareModel::Validate() const {
  for (double v : {gpu_bandwidth, cpu_bandwidth, cpu_sparse_bandwidth, link_bandwidth}) {
    if (!(v > 0) || !std::isfinite(v)) {
      return absl::InvalidArgumentError("hardware bandwidths must be positive");
    }
  }
  for (double v : {gpu_layer_overhead_s, link_latency_s, sync_s}) {
    if (!(v >= 0) || !std::isfinite(v)) {
      return absl::InvalidArgumentError("hardware latencies must be non-negative");
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> GpuPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

absl::StatusOr<HardwareModel> GpuPreset(std::string_view gpu) {
  for (const Preset& p : kPresets) {
    if (gpu == p.name) {
      HardwareModel hw;
      hw.name = p.name;
      hw.gpu = p.name;
      hw.gpu_bandwidth = p.peak_bandwidth * kAchievableFraction;
      hw.link_bandwidth = p.peak_link_bandwidth * kAchievableFraction;
      return hw;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown GPU '", Sv(gpu), "' (known: ", absl::StrJoin(GpuPresetNames(), ", "), ")"));
}

absl::StatusOr<HardwareModel> ReadHardwareFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadRegularFile(path);
  if (!text.ok()) return text.status();
  json root = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  HardwareModel hw;
  if (absl::Status s = ParseHardware(root, hw); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return hw;
}

std::string HardwareToJson(const HardwareModel& hw) {
  json root = {
      {"name", hw.name},
      {"gpu",
       {{"name", hw.gpu},
        {"bandwidth_gbps", hw.gpu_bandwidth / 1e9},
        {"layer_overhead_us", hw.gpu_layer_overhead_s * 1e6}}},
      {"cpu",
       {{"bandwidth_gbps", hw.cpu_bandwidth / 1e9},
        {"sparse_bandwidth_gbps", hw.cpu_sparse_bandwidth / 1e9},
        {"source", hw.cpu_source}}},
      {"link",
       {{"bandwidth_gbps", hw.link_bandwidth / 1e9},
        {"latency_us", hw.link_latency_s * 1e6},
        {"sync_us", hw.sync_s * 1e6}}},
  };
  return root.dump(2) + "\n";
}

absl::Status WriteHardwareFile(const std::string& path, const HardwareModel& hardware) {
  return WriteFileAtomically(path, HardwareToJson(hardware));
}

}  // namespace pinfer
