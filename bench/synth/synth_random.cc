#include "bench/synth/synth_random.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace pinfer::synth {
namespace {

// Coefficients of P. J. Acklam's rational approximation of the normal quantile: a central
// rational function of (p - 1/2)^2 for p in [p_low, 1 - p_low], tail functions of
// sqrt(-2 log p) outside.
constexpr double kA[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                         1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
constexpr double kB[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                         6.680131188771972e+01, -1.328068155288572e+01};
constexpr double kC[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                         -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
constexpr double kD[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                         3.754408661907416e+00};
constexpr double kPLow = 0.02425;

double AcklamQuantile(double p) {
  if (p < kPLow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((kC[0] * q + kC[1]) * q + kC[2]) * q + kC[3]) * q + kC[4]) * q + kC[5]) /
           ((((kD[0] * q + kD[1]) * q + kD[2]) * q + kD[3]) * q + 1);
  }
  if (p > 1 - kPLow) {
    const double q = std::sqrt(-2 * std::log1p(-p));
    return -(((((kC[0] * q + kC[1]) * q + kC[2]) * q + kC[3]) * q + kC[4]) * q + kC[5]) /
           ((((kD[0] * q + kD[1]) * q + kD[2]) * q + kD[3]) * q + 1);
  }
  const double q = p - 0.5;
  const double r = q * q;
  return (((((kA[0] * r + kA[1]) * r + kA[2]) * r + kA[3]) * r + kA[4]) * r + kA[5]) * q /
         (((((kB[0] * r + kB[1]) * r + kB[2]) * r + kB[3]) * r + kB[4]) * r + 1);
}

// Uniform in (0, 1) from 32 bits: the midpoints of 2^32 equal cells.
inline double Uniform32(uint32_t bits) { return (static_cast<double>(bits) + 0.5) * 0x1.0p-32; }

}  // namespace

uint64_t HashName(std::string_view name) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (char c : name) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001B3ull;
  }
  return hash;
}

uint64_t StreamKey(uint64_t seed, std::string_view name, uint64_t index) {
  return Mix64(Mix64(Mix64(seed) ^ HashName(name)) + Mix64(index ^ 0xA0761D6478BD642Full));
}

void RandomStream::FillNormal(float* out, size_t n) {
  // In batches: draw 32-bit uniforms, run the central rational function over all of them in float
  // (a loop the compiler vectorizes), then redo the ~5% that fall in the tails in double.
  constexpr size_t kBatch = 256;
  constexpr auto kLowBits = static_cast<uint32_t>(kPLow * 0x1.0p32);  // u < p_low: lower tail
  constexpr float kAf[] = {static_cast<float>(kA[0]), static_cast<float>(kA[1]),
                           static_cast<float>(kA[2]), static_cast<float>(kA[3]),
                           static_cast<float>(kA[4]), static_cast<float>(kA[5])};
  constexpr float kBf[] = {static_cast<float>(kB[0]), static_cast<float>(kB[1]),
                           static_cast<float>(kB[2]), static_cast<float>(kB[3]),
                           static_cast<float>(kB[4])};
  uint32_t bits[kBatch];
  for (size_t first = 0; first < n; first += kBatch) {
    const size_t count = std::min(kBatch, n - first);
    for (size_t i = 0; i < count; i += 2) {
      const uint64_t draw = NextU64();
      bits[i] = static_cast<uint32_t>(draw);
      bits[i + 1] = static_cast<uint32_t>(draw >> 32);  // bits has room for an odd count's pair
    }
    float* x = out + first;
    for (size_t i = 0; i < count; ++i) {
      // q = u - 1/2 from the top 24 bits, exact in float.
      const float q =
          (static_cast<float>(static_cast<int32_t>(bits[i] >> 8)) + 0.5f) * 0x1.0p-24f - 0.5f;
      const float r = q * q;
      x[i] = (((((kAf[0] * r + kAf[1]) * r + kAf[2]) * r + kAf[3]) * r + kAf[4]) * r + kAf[5]) * q /
             (((((kBf[0] * r + kBf[1]) * r + kBf[2]) * r + kBf[3]) * r + kBf[4]) * r + 1);
    }
    for (size_t i = 0; i < count; ++i) {
      if (bits[i] < kLowBits || bits[i] > ~kLowBits) x[i] = NormalQuantileFast(Uniform32(bits[i]));
    }
  }
}

double NormalCdf(double x) { return 0.5 * std::erfc(-x * std::numbers::sqrt2 / 2); }

double NormalPdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); }

double NormalQuantile(double p) {
  const double x = AcklamQuantile(p);
  // Halley's step on Φ(x) - p, with the error taken from the tail side for accuracy.
  const double e = p < 0.5 ? NormalCdf(x) - p : (1 - p) - NormalCdf(-x);
  const double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(0.5 * x * x);
  return x - u / (1 + 0.5 * x * u);
}

float NormalQuantileFast(double p) { return static_cast<float>(AcklamQuantile(p)); }

}  // namespace pinfer::synth
