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
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/model.h"

namespace pinfer {

struct FfnCostCurve {
  double dense_seconds = 0.0;     // d0: every neuron, one token
  double dense_per_token = 0.0;   // d2
  double sparse_base = 0.0;       // c0
  double sparse_slope = 0.0;      // c1
  double sparse_per_token = 0.0;  // c2
  double crossover = 0.0;         // one token: the density where t_s = t_d, in [0, 1] (for the log)

  double Dense(int64_t n) const;
  double Sparse(double density, int64_t n) const;
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

  // The same crossover for every layer (tests, --sparse-crossover).
  static FfnCostModel Fixed(double crossover, RowChoice batch = RowChoice::kUnion);
};

// Times the row routine on the model's layers (one measurement per distinct FFN weight signature:
// dtypes and shapes; rotating over layers so that a rep does not find the previous one's rows in
// cache), with the current thread count. Takes about 20 dense FFN passes of one token.
absl::StatusOr<FfnCostModel> MeasureFfnCostModel(const Model& model);

}  // namespace pinfer
