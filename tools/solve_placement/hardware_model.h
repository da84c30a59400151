// The hardware cost model of pi-place's latency objective and of its per-layer minimum GPU share:
// effective bandwidths of the GPU, the CPU and the host-device link, and fixed per-layer costs.
// Decode at batch 1 is memory-bound, so time is bytes read / bandwidth.
//
// GPU presets (peak figures from NVIDIA's public data sheets, times 0.8: memory-bound GEMV
// kernels reach roughly 75-90% of peak; an assumption, not a measurement):
//   rtx4090  GDDR6X 1008 GB/s (GeForce RTX 4090 spec page)  -> 806 GB/s; PCIe 4.0 x16 -> 25 GB/s
//   a100     HBM2e  2039 GB/s (A100 80GB SXM data sheet)    -> 1631 GB/s; PCIe 4.0 x16 -> 25 GB/s
//   h100     HBM3   3350 GB/s (H100 SXM5 data sheet)        -> 2680 GB/s; PCIe 5.0 x16 -> 50 GB/s
// (PCIe 4.0 x16 carries 31.5 GB/s per direction, PCIe 5.0 x16 63 GB/s, before the same 0.8.)
// Fixed costs shared by the presets (assumptions, typical of CUDA on Linux): 10 us per small
// host-device copy, 10 us per stream synchronisation, 20 us of kernel launches per layer part.
//
// CPU figures default to a desktop with dual-channel DDR5 (40 GB/s dense, 20 GB/s on scattered
// neuron rows), an assumption: `pi-place --calibrate` measures this machine instead.
//
// Hardware file (JSON; every field optional, missing ones come from the GPU preset named by
// gpu.name, default rtx4090):
//   {"name": "...",
//    "gpu":  {"name": "h100", "bandwidth_gbps": 2680, "layer_overhead_us": 20},
//    "cpu":  {"bandwidth_gbps": 40, "sparse_bandwidth_gbps": 20, "source": "..."},
//    "link": {"bandwidth_gbps": 50, "latency_us": 10, "sync_us": 10}}
// GB/s are 1e9 bytes per second.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pinfer {

struct HardwareModel {
  std::string name = "rtx4090";  // recorded in plans
  std::string gpu = "rtx4090";
  double gpu_bandwidth = 806e9;         // B/s, dense reads
  double gpu_layer_overhead_s = 20e-6;  // kernel launches of one layer part (attention or FFN)
  double cpu_bandwidth = 40e9;          // B/s, dense matrix-vector products
  double cpu_sparse_bandwidth = 20e9;   // B/s of neuron rows read by the sparse FFN
  std::string cpu_source = "default (desktop DDR5 assumption)";
  double link_bandwidth = 25e9;   // B/s host <-> device
  double link_latency_s = 10e-6;  // one small copy
  double sync_s = 10e-6;          // one stream synchronisation / CPU thread wake-up

  // Time of one synchronisation of a layer split across devices: the hidden state (dim f32) goes
  // to the other device and a partial sum comes back, then both sides wait for each other.
  double SyncSeconds(int64_t dim) const;

  absl::Status Validate() const;
};

std::vector<std::string> GpuPresetNames();
// One of GpuPresetNames(), with the default CPU figures.
absl::StatusOr<HardwareModel> GpuPreset(std::string_view gpu);

// Reads a hardware file (format above); errors name the file and the field.
absl::StatusOr<HardwareModel> ReadHardwareFile(const std::string& path);
std::string HardwareToJson(const HardwareModel& hardware);
// Atomically.
absl::Status WriteHardwareFile(const std::string& path, const HardwareModel& hardware);

}  // namespace pinfer
