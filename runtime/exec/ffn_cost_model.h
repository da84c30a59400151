// What computing a set of a layer's FFN neurons on the CPU costs, MEASURED on the model's own
// weights at load (MeasureFfnCostModel: a few timed passes of the row routine, ffn_rows.h, over
// real layers), not guessed: the crossover between the dense and the gathered kernels depends on
// the dtype (q4_0 rows are short and their gathers pay more per byte than f16 rows), the row
// length, the cache sizes and the thread count.
//
// Model, for ρ = neurons computed / n_ff and a batch of n tokens:
//   gathered rows:  t_s(ρ, n) = c0 + ρ·(c1 + c2·(n - 1))
//   every neuron:   t_d(n)    = d0 + d2·(n - 1)               (the dense kernels)
// c0, c1 come from two densities at n = 1, c2 and d2 from a batch probe. A part of a layer picks,
// per call, the cheapest of: every neuron of the part, the union of its tokens' selections for the
// whole batch, or each token's own selection (FfnCostModel::Choose).
//
// --sparse-mode auto extends the same model to the choice of HOW a part selects (ChooseMode), for
// a part holding a share p of the layer's neurons:
//   dense:      t_d(n) (p = 1), else t_s(p, n)
//   exact:      t_e(ρ, n) = p·g(n) + ρ·s_ud·(c1 + c2·(n - 1))   g(n) = g0 + g2·(n - 1): the gate
//               pass alone (timed with nothing firing), s_ud: the up and down rows' share of a
//               neuron's bytes, ρ: the density that fires for some token of the batch
//   predictor:  t_p(n) + the cheapest of the rows above at the predicted density, where
//               t_p(n) = p0 + p2·(n - 1) is the predictor's own time (timed at load on its
//               weights); its bytes count too: a predictor whose time and bytes (its own plus
//               those of the rows it selects) are not both 5% below the best exact mode's
//               (dense or exact, whose output is the dense one) is never chosen.
// The densities are estimates that the part keeps up to date from what it computes (priors: the
// predictor's report, the profile).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model.h"

namespace pinfer {

struct PredictorWeights;

struct FfnCostCurve {
  double dense_seconds = 0.0;     // d0: every neuron, one token
  double dense_per_token = 0.0;   // d2
  double sparse_base = 0.0;       // c0
  double sparse_slope = 0.0;      // c1
  double sparse_per_token = 0.0;  // c2
  double crossover = 0.0;         // one token: the density where t_s = t_d, in [0, 1] (for the log)

  // Exact gate-first selection (auto): the gate pass over every neuron, g(n) = g0 + g2·(n - 1),
  // and the up and down rows' share of a neuron's bytes.
  double gate_seconds = 0.0;    // g0
  double gate_per_token = 0.0;  // g2
  double up_down_share = 2.0 / 3.0;

  double Dense(int64_t n) const;
  double Sparse(double density, int64_t n) const;
  // Gate-first over a share `part` of the neurons, `fired` of n_ff computing up and down.
  double Exact(double part, double fired, int64_t n) const;
};

// A layer's predictor, timed at load: t_p(n) = seconds + per_token·(n - 1).
struct PredictorCost {
  double seconds = 0.0;
  double per_token = 0.0;
  double At(int64_t n) const { return seconds + per_token * static_cast<double>(n - 1); }
};

// How an auto part selects one call.
enum class AutoMode { kDense, kExact, kPredictor };
const char* AutoModeName(AutoMode mode);  // "dense", "exact", "predictor"

// What auto knows when it chooses for a part of a layer. Densities are fractions of n_ff that a
// call computes (for a batch: the union over its tokens); < 0: not known yet (the mode is then
// tried once, which measures it, provided its fixed cost alone can win).
struct AutoInputs {
  double part = 1.0;          // the part's share of the layer's neurons
  double fired = -1.0;        // what fires (exact computes its up and down rows)
  double predicted = -1.0;    // what the predictor selects; ignored without a predictor
  bool has_predictor = false;
  // Bytes of the layer: every gate row, every up and down row, the predictor's weights.
  double gate_bytes = 0.0;
  double up_down_bytes = 0.0;
  double predictor_bytes = 0.0;
};

// A mode's expected cost of one call.
struct ModeCost {
  double seconds = 0.0;
  double bytes = 0.0;
};

// How a part computes one call.
enum class RowChoice {
  kAll,       // every neuron of the part (the dense fallback)
  kUnion,     // the union of the tokens' selections, for every token of the batch
  kPerToken,  // each token's own selection
};

struct FfnCostModel {
  // Per layer; empty: no measurement (a fixed crossover).
  std::vector<FfnCostCurve> curves;
  // Without curves: a part computes its selection (the union for a batch) while the union's
  // density is below this, every neuron otherwise.
  double fixed_crossover = 1.01;
  // Without curves: how a batch below the crossover computes (kUnion or kPerToken).
  RowChoice fixed_batch = RowChoice::kUnion;
  // How the costs were obtained (one line, for the log).
  std::string source = "no cost model: the selection always";

  bool measured() const { return !curves.empty(); }
  // The cheapest way for a part of `part_size` of the layer's n_ff neurons, whose n tokens
  // select `union_size` of its neurons together and `selected_sum` in all (Σ over tokens).
  RowChoice Choose(int64_t layer, int64_t n_ff, int64_t part_size, int64_t n, int64_t union_size,
                   int64_t selected_sum) const;

  // Per layer, the predictor's own time (MeasureFfnCostModel with a predictor); empty: none.
  std::vector<PredictorCost> predictor;

  // Auto: the expected cost of `mode` for one call of n tokens (unknown densities count as 0:
  // the least the mode can cost) and the mode of least expected time among those that can win.
  ModeCost Expected(AutoMode mode, int64_t layer, int64_t n, const AutoInputs& in) const;
  AutoMode ChooseMode(int64_t layer, int64_t n, const AutoInputs& in) const;

  // The same crossover for every layer (tests, --sparse-crossover).
  static FfnCostModel Fixed(double crossover, RowChoice batch = RowChoice::kUnion);
};


// Times the row routine on the model's layers (one measurement per distinct FFN weight signature:
// dtypes and shapes; rotating over layers so that a rep does not find the previous one's rows in
// cache), with the current thread count. Takes about 30 dense FFN passes of one token. With a
// predictor (of this model), also times its layers (one measurement per distinct rank).
absl::StatusOr<FfnCostModel> MeasureFfnCostModel(const Model& model,
                                                 const PredictorWeights* predictor = nullptr);

}  // namespace pinfer
