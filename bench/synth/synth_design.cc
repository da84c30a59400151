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

double FiringThreshold(SynthActivation act) {
  return act == SynthActivation::kRelu ? 0.0 : kFatReluThreshold;
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
    plan.output_moment[i] = up_moment * FatReluSecondMoment(mu, threshold);
    moment_sum += plan.output_moment[i];
  }
  plan.gate_content_norm = std::sqrt(static_cast<double>(dim - kBiasDims)) / input.content_norm;
  plan.up_std = kUpScale / input.content_norm;
  // sum_i σ_d²·E[a_i²] = 1/(2L): the expected energy per content dimension the FFN adds.
  plan.down_std = std::sqrt(1.0 / (2.0 * static_cast<double>(n_layers) * moment_sum));
  return plan;
}

}  // namespace pinfer::synth
