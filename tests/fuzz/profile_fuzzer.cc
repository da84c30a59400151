// libFuzzer target: the activation profile reader (ActivationProfile::Read and ReadFor against the
// fixed model, OpenArtifact), then what the runtime does with an accepted profile: a calibrated
// one's thresholds become FiringThresholds (as runtime/app/artifacts.cc loads them) and are
// applied. Inputs are .pi files with valid checksums (pi_custom_mutator.cc).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "runtime/model/activation_profile.h"
#include "runtime/model/firing_thresholds.h"
#include "tests/fuzz/fixed_model.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"

namespace pinfer::fuzz {
namespace {

void CheckProfile(const ActivationProfile& p) {
  Require(p.Validate().ok(), "Read returned a profile that fails Validate()");
  for (int64_t l = 0; l < p.n_layers; ++l) {
    const double density = p.LayerDensity(l);
    Require(density >= 0 && density <= 1, "a layer density is outside [0, 1]");
  }
  if (p.calibrated()) {
    // τ compares with |act(g)|: a NaN or negative τ would silently make no neuron or every
    // neuron fire.
    for (float tau : p.threshold) {
      Require(std::isfinite(tau) && tau >= 0, "a calibrated threshold is not finite and >= 0");
    }
  }
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const Model& model = fuzz::FixedModel();
  const std::string path = fuzz::WriteScratchFile("model.profile.pi", {data, size});
  absl::StatusOr<ActivationProfile> read = ActivationProfile::Read(path);
  if (read.ok()) fuzz::CheckProfile(*read);
  absl::StatusOr<ActivationProfile> profile = ActivationProfile::ReadFor(path, model);
  if (!profile.ok()) return fuzz::Rejected(profile.status());
  fuzz::CheckProfile(*profile);
  fuzz::Require(profile->n_layers == model.n_layers(), "ReadFor accepted another layer count");
  if (!profile->calibrated()) return 0;
  FiringThresholds firing{model.config().ffn_act, profile->threshold};
  float gate[] = {-3.0f, -0.5f, 0.0f, 0.25f, 2.0f, INFINITY, NAN};
  float a[] = {1, 1, 1, 1, 1, 1, 1};
  for (int64_t l = 0; l < profile->n_layers; ++l) {
    (void)firing.Fires(l, gate[4], a[4]);
    firing.Apply(l, gate, 7, a);
  }
  return 0;
}
