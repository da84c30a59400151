// The construction of a synthetic model: how its weights are scaled so that activations stay
// finite through every layer, and how the planted firing probabilities become weights. The math is
// derived in bench/synth/README.md; the names here follow it.
//
// In short: dimensions [0, B) of the residual stream carry a constant "bias" component c·u_b that
// no layer reads (except the FFN gates) or writes, so after RMSNorm every token has the same
// projection x_b = x·u_b. The rest of the stream carries the token's content, with energy e per
// dimension. Gate row i is β_i·u_b plus a random vector scaled so that its projection on the
// content is N(0, 1); then g_i = β_i·x_b + N(0, 1) exceeds the model's fatrelu threshold T exactly
// when the content part exceeds t_i = T − β_i·x_b, i.e. with probability 1 − Φ(t_i) = p_i. That is
// a per-neuron fatrelu threshold folded into the gate row, with one global fatrelu:T for the
// runtime. A ReLU model (PowerInfer computes plain ReLU) shifts every gate's bias-channel part by
// −T/x_b: its gate is g − T, and relu(g − T) > 0 where g > T, the same planted sets. e grows
// through the layers by what the FFNs add (computed in closed form from the planted p_i and the
// generated down rows), and every layer is calibrated for its own e.
//
// LayerNorm architectures (opt, falcon; README.md, "Gate-less FFNs"): the normalized content has
// norm sqrt(d) whatever e; OPT plants μ_i in fc1's f32 bias instead of a bias channel, Falcon's
// LayerNorms make the channel themselves (weight 0, bias x_b/sqrt(B) on the bias dimensions).
#pragma once

#include <cstdint>
#include <vector>

#include "bench/synth/locality.h"

namespace pinfer::synth {

// B: dimensions of the bias channel, one quantization block so it quantizes exactly.
inline constexpr int64_t kBiasDims = 32;
// T of the model's FFN activation fatrelu:T (in units of the gate's content noise).
inline constexpr double kFatReluThreshold = 1.0;
// ξ: the bias channel's energy relative to the content's at the embeddings: c² = ξ·(d − B).
inline constexpr double kBiasEnergy = 1.0;
// e_0: per-dimension energy of the embeddings' content part (each row is normalized to it).
inline constexpr double kEmbeddingEnergy = 1.0;
// Learned positions (opt): the share of e_0 that position_embd's rows hold (the token rows hold the
// rest), so that x = token + position has the same energy.
inline constexpr double kPositionEnergy = 0.25;
// Standard deviation of the q and k biases (opt), against q and k elements of standard deviation 1.
inline constexpr double kProjectionBiasScale = 0.1;
// σ_u and σ_v: standard deviations of u = up_i·x and of the attention values.
inline constexpr double kUpScale = 0.25;
inline constexpr double kValueScale = 0.25;
// κ_a: energy per dimension that attention adds in one layer when it attends to a single position,
// in units of 1/(2·n_layers) (the FFN adds about 1 in those units).
inline constexpr double kAttentionGain = 0.25;
// Where |value| = kDownTileSpan·σ, a ffn_down tile puts its extreme code.
inline constexpr double kDownTileSpan = 2.5;

// The FFN activation a synthetic model is written with. kFatRelu (fatrelu:T, T = kFatReluThreshold)
// is the original construction; kRelu plants the same firing sets for a plain-ReLU runtime such as
// PowerInfer's: every gate's mean is lowered by T, so relu(g − T) fires exactly where g > T.
//
// kGeluErf (gate-less FFNs only: Falcon's own GELU) has no exact zeros: a neuron "fires" when
// |gelu(g)| exceeds a threshold τ, which pi-profile calibrates per layer. Its gates are
// fatrelu:T's, planted for τ = gelu(T): gelu(g) > gelu(T) exactly when g > T (for T above gelu's
// minimum at g ≈ −0.75, |gelu| < 0.17 there), so the same neurons fire with p_i at that τ.
enum class SynthActivation { kFatRelu, kRelu, kGeluErf };

// "fatrelu:1", "relu" or "gelu_erf": the runtime's name of the activation.
const char* SynthActivationName(SynthActivation act);

// The value the gate must exceed to fire: T for fatrelu:T and for gelu_erf (at τ = gelu(T)), 0 for
// relu.
double FiringThreshold(SynthActivation act);

// E[gelu(g)²] for g ~ N(mu, 1), gelu(g) = g·Φ(g): every neuron contributes to a dense pass.
double GeluSecondMoment(double mu);

// E[fat_T(g)²] for g ~ N(mu, 1), fat_T(g) = g when g > T, else 0:
//   (1 + mu²)·Q(T − mu) + (T + mu)·φ(T − mu),  Q = 1 − Φ.
double FatReluSecondMoment(double mu, double threshold);

// x = RMSNorm(h) (unit norm weights) for a residual h = c·u_b + content, with c² = ξ·(d − B) and
// content energy e per dimension over d − B dimensions:
//   x_b = x·u_b = sqrt(d·ξ/(ξ + e)),   r_x = |x_content| = sqrt(d·e/(ξ + e)).
struct InputGeometry {
  double bias_projection = 0;  // x_b
  double content_norm = 0;     // r_x
};
InputGeometry NormalizedInput(int64_t dim, double content_energy);

// x = LayerNorm(h) (opt, falcon) for a residual h with nothing in the bias dimensions: the content
// is normalized to r_x = sqrt(d) whatever e (the bias dimensions' share, B·m²/s² for a mean m of
// order s/sqrt(d), is neglected). The bias channel, where the architecture has one (falcon), is
// the norm's own: weight 0 and bias x_b/sqrt(B) on the bias dimensions, so every token has
// exactly x_b = sqrt(d/2) (what RMSNorm gives llama at e = 1); without one (opt), x_b = 0.
InputGeometry LayerNormInput(int64_t dim, bool bias_channel);

// Everything the FFN of one layer is generated from.
struct FfnPlan {
  std::vector<double> probability;  // p_i, the planted firing probability of neuron i
  // μ_i, the gate's mean: T − t_i, t_i = Φ⁻¹(1 − p_i), for fatrelu:T; −t_i for relu. A gate-less
  // FFN with biases (opt) stores it as fc1's bias b_i; the others as the bias-channel weight:
  std::vector<float> gate_mean;
  // β_i = μ_i/x_b (0 without a bias channel).
  std::vector<float> bias_weight;
  // E[a_i²] = σ_u²·FatReluSecondMoment(μ_i, threshold) for a gated FFN (a = act(g)·u), without
  // σ_u² for a gate-less one (a = act(g)); threshold = FiringThreshold(act): fatrelu:T gives its
  // output g, relu gives g − T. gelu_erf: GeluSecondMoment(μ_i), the dense pass's.
  std::vector<double> output_moment;
  double gate_content_norm = 0;  // |gate_i content part| = sqrt(d − B)/r_x: noise N(0, 1)
  double up_std = 0;             // σ_u/r_x per element: u_i ~ N(0, σ_u²)
  double down_std = 0;           // σ_d: the FFN adds about 1/(2L) per dimension
};
FfnPlan PlanFfn(const FiringLaw& law, uint64_t seed, int64_t layer, int64_t dim, int64_t n_layers,
                const InputGeometry& input, SynthActivation act, bool gated);

}  // namespace pinfer::synth
