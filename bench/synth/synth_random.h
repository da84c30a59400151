// Counter-based random numbers for pi-synth, and the standard normal distribution.
//
// Every random value is a pure function of (seed, stream name, stream index, position): a row of a
// tensor gets its own stream, so any thread may generate any row in any order and the output bytes
// never depend on the thread count. The generator is splitmix64 (a 64-bit counter passed through a
// strong mixing function); normal deviates come from the inverse normal CDF of 32-bit uniforms, so
// one 64-bit draw gives two deviates and no state is carried between them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pinfer::synth {

// The splitmix64 finalizer: a bijection of 64-bit integers with full avalanche.
inline uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// FNV-1a of a name: stable across platforms and releases (std::hash is not).
uint64_t HashName(std::string_view name);

// The key of stream `index` of the stream family `name` under `seed` (e.g. name = a tensor, index
// = a row).
uint64_t StreamKey(uint64_t seed, std::string_view name, uint64_t index);

class RandomStream {
 public:
  explicit RandomStream(uint64_t key) : state_(key) {}

  uint64_t NextU64() {
    state_ += 0x9E3779B97F4A7C15ull;
    return Mix64(state_);
  }
  // Uniform in the open interval (0, 1), 53 bits.
  double NextUniform() { return (static_cast<double>(NextU64() >> 11) + 0.5) * 0x1.0p-53; }
  // n standard normal deviates (n need not be even; an odd tail uses half of a draw).
  void FillNormal(float* out, size_t n);

 private:
  uint64_t state_;
};

// Φ(x), the standard normal CDF.
double NormalCdf(double x);
// φ(x), the standard normal density.
double NormalPdf(double x);
// Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation (relative error < 1.2e-9), refined by one
// Halley step on erfc to full double precision.
double NormalQuantile(double p);
// The unrefined approximation rounded to float: the bulk path for weights, where 1e-9 is plenty.
float NormalQuantileFast(double p);

}  // namespace pinfer::synth
