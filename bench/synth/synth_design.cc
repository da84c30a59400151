#include "bench/synth/synth_design.h"

#include <cmath>

#include "bench/synth/synth_random.h"

namespace pinfer::synth {

double FatReluSecondMoment(double mu, double threshold) {
  const double t = threshold - mu;  // the threshold in standard units of g - mu
  return (1 + mu * mu) * NormalCdf(-t) + (threshold + mu) * NormalPdf(t);
}

InputGeometry NormalizedInput(int64_t dim, double content_energy) {
  const double d = static_cast<double>(dim);
  return {std::sqrt(d * kBiasEnergy / (kBiasEnergy + content_energy)),
          std::sqrt(d * content_energy / (kBiasEnergy + content_energy))};
}

InputGeometry LayerNormInput(int64_t dim, bool bias_channel) {
  const double d = static_cast<double>(dim);
  return {bias_channel ? std::sqrt(d / 2) : 0.0, std::sqrt(d)};
}

const char* SynthActivationName(SynthActivation act) {
  switch (act) {
    case SynthActivation::kRelu:
      return "relu";
    case SynthActivation::kGeluErf:
      return "gelu_erf";
    case SynthActivation::kFatRelu:
      break;
  }
  return "fatrelu:1";
}

double FiringThreshold(SynthActivation act) {
  return act == SynthActivation::kRelu ? 0.0 : kFatReluThreshold;
}

double GeluSecondMoment(double mu) {
  // Simpson's rule over mu ± 10 (the normal weight beyond is below 1e-22); the integrand is smooth,
  // so 400 intervals give about 1e-10 relative.
  constexpr int kIntervals = 400;
  constexpr double kSpan = 10.0;
  const double h = 2 * kSpan / kIntervals;
  double sum = 0;
  for (int k = 0; k <= kIntervals; ++k) {
    const double g = mu - kSpan + k * h;
    const double gelu = g * NormalCdf(g);
    const double weight = k == 0 || k == kIntervals ? 1 : (k % 2 == 1 ? 4 : 2);
    sum += weight * gelu * gelu * NormalPdf(g - mu);
  }
  return sum * h / 3;
}

FfnPlan PlanFfn(const FiringLaw& law, uint64_t seed, int64_t layer, int64_t dim, int64_t n_layers,
                const InputGeometry& input, SynthActivation act, bool gated) {
  const double threshold = FiringThreshold(act);
  FfnPlan plan;
  plan.probability = law.LayerProbabilities(seed, layer);
  const size_t n_ff = plan.probability.size();
  plan.gate_mean.resize(n_ff);
  plan.bias_weight.resize(n_ff);
  plan.output_moment.resize(n_ff);
  const double up_moment = gated ? kUpScale * kUpScale : 1.0;
  double moment_sum = 0;
  for (size_t i = 0; i < n_ff; ++i) {
    const double t = -NormalQuantile(plan.probability[i]);  // Φ⁻¹(1 - p) = -Φ⁻¹(p)
    // The gate's mean: fires (g > threshold) with probability P(z > t) = p. For fatrelu:T this is
    // T − t; relu's is the same minus T, i.e. −t (written so to keep fatrelu's bytes as they were).
    const double mu = act == SynthActivation::kRelu ? -t : kFatReluThreshold - t;
    plan.gate_mean[i] = static_cast<float>(mu);
    plan.bias_weight[i] =
        input.bias_projection > 0 ? static_cast<float>(mu / input.bias_projection) : 0.0f;
    plan.output_moment[i] =
        up_moment * (act == SynthActivation::kGeluErf ? GeluSecondMoment(mu)
                                                      : FatReluSecondMoment(mu, threshold));
    moment_sum += plan.output_moment[i];
  }
  plan.gate_content_norm = std::sqrt(static_cast<double>(dim - kBiasDims)) / input.content_norm;
  plan.up_std = kUpScale / input.content_norm;
  // sum_i σ_d²·E[a_i²] = 1/(2L): the expected energy per content dimension the FFN adds.
  plan.down_std = std::sqrt(1.0 / (2.0 * static_cast<double>(n_layers) * moment_sum));
  return plan;
}

}  // namespace pinfer::synth
