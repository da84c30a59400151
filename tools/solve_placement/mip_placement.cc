#include "tools/solve_placement/mip_placement.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "CbcModel.hpp"
#include "CoinPackedMatrix.hpp"
#include "OsiClpSolverInterface.hpp"
#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// One choice for a layer: attention on the GPU or not, and the number of GPU groups.
struct LayerOption {
  bool attention = false;
  int64_t groups = 0;
  double bytes = 0;  // GPU bytes (MiB)
  double cost = 0;   // objective contribution: ms per token, or -% of all activations
};

// Columns of one layer; a = -1 in the coverage objective (attention is not decided there).
struct LayerColumns {
  int n = -1, z = -1, w = -1, a = -1;
  int first_option = -1;
  std::vector<LayerOption> options;
};

class LpBuilder {
 public:
  int AddColumn(double lower, double upper, double cost, bool integer) {
    lower_.push_back(lower);
    upper_.push_back(upper);
    cost_.push_back(cost);
    integer_.push_back(integer);
    return static_cast<int>(cost_.size()) - 1;
  }
  void AddRow(std::vector<int> index, std::vector<double> value, double lower, double upper) {
    rows_.push_back({std::move(index), std::move(value)});
    row_lower_.push_back(lower);
    row_upper_.push_back(upper);
  }
  int columns() const { return static_cast<int>(cost_.size()); }
  int rows() const { return static_cast<int>(rows_.size()); }
  int integers() const {
    return static_cast<int>(std::count(integer_.begin(), integer_.end(), true));
  }

  void Load(OsiClpSolverInterface& solver) const {
    CoinPackedMatrix matrix(false, 0, 0);
    matrix.setDimensions(0, columns());
    for (const Row& r : rows_) {
      matrix.appendRow(static_cast<int>(r.index.size()), r.index.data(), r.value.data());
    }
    solver.loadProblem(matrix, lower_.data(), upper_.data(), cost_.data(), row_lower_.data(),
                       row_upper_.data());
    for (int c = 0; c < columns(); ++c) {
      if (integer_[static_cast<size_t>(c)]) solver.setInteger(c);
    }
  }

 private:
  struct Row {
    std::vector<int> index;
    std::vector<double> value;
  };
  std::vector<double> lower_, upper_, cost_;
  std::vector<bool> integer_;
  std::vector<Row> rows_;
  std::vector<double> row_lower_, row_upper_;
};

struct Formulation {
  LpBuilder lp;
  std::vector<LayerColumns> layer;
  int output = -1;
  double output_bytes = 0, output_cost = 0;  // of output = 1
  double capacity = 0;                       // MiB for the options and the classifier
  double objective_constant = 0;             // objective = constant + c'x
};

// Every option of layer l with its bytes and cost, by the cost_model.h formulas. For a fixed
// attention choice, a layer with GPU neurons and not all of them (0 < n < K), the cost is convex
// in n (the GPU part is linear, the CPU part follows the concave mass curve, and their maximum
// is convex) and the bytes are linear.
std::vector<LayerOption> LayerOptions(const PlacementProblem& problem, const LayerGroups& g,
                                      const LayerProblem& layer, double coverage_scale) {
  const HardwareModel& hw = problem.hardware;
  const bool latency = problem.objective == Objective::kLatency;
  const double sync = hw.SyncSeconds(problem.dim);
  const double nb = static_cast<double>(layer.neuron_bytes);
  const double predictor = static_cast<double>(layer.predictor_bytes);
  const double attention_read = static_cast<double>(layer.attention_bytes + layer.kv_read_bytes);
  const int64_t K = g.groups();
  std::vector<LayerOption> options;
  for (int attention = 0; attention <= (latency ? 1 : 0); ++attention) {
    double neurons = 0, mass = 0;
    for (int64_t k = 0; k <= K; ++k) {
      if (k > 0) {
        neurons += g.group_neurons[static_cast<size_t>(k - 1)];
        mass += g.group_mass[static_cast<size_t>(k - 1)];
      }
      if (k > 0 && k < g.min_share_groups) continue;
      LayerOption o;
      o.attention = attention != 0;
      o.groups = k;
      double bytes = neurons * nb + (k > 0 ? predictor : 0.0);
      if (attention) bytes += static_cast<double>(layer.attention_bytes + layer.kv_bytes);
      o.bytes = bytes / kMiB;
      if (!latency) {
        o.cost = -mass * coverage_scale;
      } else {
        const double attention_s = attention
                                       ? attention_read / hw.gpu_bandwidth + hw.gpu_layer_overhead_s
                                       : attention_read / hw.cpu_bandwidth;
        const double gpu_s =
            k > 0 ? (predictor + neurons * nb) / hw.gpu_bandwidth + hw.gpu_layer_overhead_s : 0.0;
        const double cpu_s = (g.total_mass - mass) * nb / hw.cpu_sparse_bandwidth +
                             (k > 0 ? 0.0 : predictor / hw.cpu_bandwidth);
        const bool one_device = (attention && k == K) || (!attention && k == 0);
        o.cost = (attention_s + std::max(gpu_s, cpu_s) + (one_device ? 0.0 : sync)) * 1e3;
      }
      options.push_back(o);
    }
  }
  return options;
}

Formulation Build(const PlacementProblem& problem, const std::vector<LayerGroups>& groups) {
  const HardwareModel& hw = problem.hardware;
  const bool latency = problem.objective == Objective::kLatency;
  const double inf = COIN_DBL_MAX;
  double total_mass = 0;
  for (const LayerGroups& g : groups) total_mass += g.total_mass;
  const double coverage_scale = total_mass > 0 ? 100.0 / total_mass : 0.0;

  Formulation form;
  LpBuilder& lp = form.lp;
  std::vector<int> memory_index;
  std::vector<double> memory_value;
  const size_t L = problem.layers.size();
  form.layer.resize(L);
  for (size_t l = 0; l < L; ++l) {
    const LayerGroups& g = groups[l];
    LayerColumns& c = form.layer[l];
    const double K = static_cast<double>(g.groups());
    c.n = lp.AddColumn(0, K, 0, true);
    c.z = lp.AddColumn(0, 1, 0, true);
    c.w = lp.AddColumn(0, 1, 0, true);
    if (latency) c.a = lp.AddColumn(0, 1, 0, true);
    c.options = LayerOptions(problem, g, problem.layers[l], coverage_scale);
    c.first_option = lp.columns();
    for (const LayerOption& o : c.options) lp.AddColumn(0, 1, o.cost, false);

    // The option weights sum to 1, and the integer columns read the chosen option: n its group
    // count, z whether it has GPU neurons, w whether it has all of them, a its attention. For
    // integer n, z, w, a the best weights sit on one option: z and w separate the points where
    // the cost or the bytes are not convex in n (k = 0 and k = K), and between them convexity
    // makes the option n itself the cheapest way to average n.
    std::vector<int> all, count, any, full, attention;
    std::vector<double> ones, ks, ones_any, ones_full, ones_attention;
    for (size_t j = 0; j < c.options.size(); ++j) {
      const LayerOption& o = c.options[j];
      const int col = c.first_option + static_cast<int>(j);
      all.push_back(col);
      ones.push_back(1);
      count.push_back(col);
      ks.push_back(static_cast<double>(o.groups));
      if (o.groups > 0) any.push_back(col), ones_any.push_back(1);
      if (o.groups == g.groups()) full.push_back(col), ones_full.push_back(1);
      if (o.attention) attention.push_back(col), ones_attention.push_back(1);
      memory_index.push_back(col);
      memory_value.push_back(o.bytes);
    }
    lp.AddRow(all, ones, 1, 1);
    count.push_back(c.n), ks.push_back(-1);
    lp.AddRow(count, ks, 0, 0);
    any.push_back(c.z), ones_any.push_back(-1);
    lp.AddRow(any, ones_any, 0, 0);
    full.push_back(c.w), ones_full.push_back(-1);
    lp.AddRow(full, ones_full, 0, 0);
    if (latency) {
      attention.push_back(c.a), ones_attention.push_back(-1);
      lp.AddRow(attention, ones_attention, 0, 0);
    }
  }
  if (latency) {
    const double out = static_cast<double>(problem.output_bytes);
    const double gpu_ms = (out / hw.gpu_bandwidth + hw.gpu_layer_overhead_s) * 1e3;
    const double cpu_ms = out / hw.cpu_bandwidth * 1e3;
    form.objective_constant += cpu_ms;
    form.output_cost = gpu_ms - cpu_ms;
    form.output_bytes = out / kMiB;
    form.output = lp.AddColumn(0, 1, form.output_cost, true);
    memory_index.push_back(form.output);
    memory_value.push_back(form.output_bytes);
  }
  // Half a byte of slack keeps LP tolerances from admitting a placement one byte over.
  const double available = static_cast<double>(problem.budget_bytes - problem.MinimumBytes());
  form.capacity = std::max(0.0, available - 0.5) / kMiB;
  lp.AddRow(memory_index, memory_value, -inf, form.capacity);
  return form;
}

// The column values of a group placement (the greedy start).
// A solution as one option per layer and the classifier flag.
struct Choice {
  std::vector<size_t> option;
  bool output = false;

  double Bytes(const Formulation& form) const {
    double bytes = output ? form.output_bytes : 0.0;
    for (size_t l = 0; l < option.size(); ++l) bytes += form.layer[l].options[option[l]].bytes;
    return bytes;
  }
  double Cost(const Formulation& form) const {
    double cost = output ? form.output_cost : 0.0;
    for (size_t l = 0; l < option.size(); ++l) cost += form.layer[l].options[option[l]].cost;
    return cost;
  }
};

Choice FromPlacement(const Formulation& form, const GroupPlacement& p) {
  Choice choice;
  choice.output = form.output >= 0 && p.output_on_gpu;
  for (size_t l = 0; l < form.layer.size(); ++l) {
    const LayerColumns& c = form.layer[l];
    const bool attention = c.a >= 0 && p.attention_on_gpu[l] != 0;
    size_t chosen = 0;
    for (size_t j = 0; j < c.options.size(); ++j) {
      if (c.options[j].groups == p.ffn_groups[l] && c.options[j].attention == attention) chosen = j;
    }
    choice.option.push_back(chosen);
  }
  return choice;
}

// Rounds an LP solution: each layer takes its heaviest option; a layer split between options
// (a basic LP solution of this multiple-choice knapsack has at most one) takes the one with the
// fewest bytes (`up` = false), which keeps the budget, or the most (`up` = true), which may not.
Choice Round(const Formulation& form, const double* x, bool up) {
  Choice choice;
  choice.output = form.output >= 0 && x[form.output] > (up ? 1e-9 : 1 - 1e-6);
  for (const LayerColumns& c : form.layer) {
    size_t heaviest = 0;
    int pick = -1;
    bool split = false;
    for (size_t j = 0; j < c.options.size(); ++j) {
      const double w = x[c.first_option + static_cast<int>(j)];
      if (w > x[c.first_option + static_cast<int>(heaviest)]) heaviest = j;
      if (w <= 1e-9) continue;
      if (w < 1 - 1e-9) split = true;
      if (pick < 0 || (up ? c.options[j].bytes > c.options[static_cast<size_t>(pick)].bytes
                          : c.options[j].bytes < c.options[static_cast<size_t>(pick)].bytes)) {
        pick = static_cast<int>(j);
      }
    }
    choice.option.push_back(split && pick >= 0 ? static_cast<size_t>(pick) : heaviest);
  }
  return choice;
}

// Makes an over-budget choice fit: repeatedly moves one layer to an option with fewer bytes (or
// takes the classifier off), the move that costs least per byte of the excess it removes (bytes
// freed beyond the excess are worth nothing here; Improve() spends them afterwards).
void Shrink(const Formulation& form, Choice& choice) {
  double over = choice.Bytes(form) - form.capacity;
  while (over > 0) {
    double best_score = 0;
    int best_layer = -2;  // -1: the classifier
    size_t best_option = 0;
    auto consider = [&](double freed, double d_cost, int layer, size_t option) {
      if (freed <= 0) return;
      const double score = d_cost / std::min(freed, over);
      if (best_layer == -2 || score < best_score) {
        best_score = score;
        best_layer = layer;
        best_option = option;
      }
    };
    if (choice.output) consider(form.output_bytes, -form.output_cost, -1, 0);
    for (size_t l = 0; l < form.layer.size(); ++l) {
      const std::vector<LayerOption>& options = form.layer[l].options;
      const LayerOption& now = options[choice.option[l]];
      for (size_t j = 0; j < options.size(); ++j) {
        consider(now.bytes - options[j].bytes, options[j].cost - now.cost, static_cast<int>(l), j);
      }
    }
    if (best_layer == -2) return;  // nothing left to free
    if (best_layer == -1) {
      choice.output = false;
      over -= form.output_bytes;
    } else {
      const size_t l = static_cast<size_t>(best_layer);
      over -=
          form.layer[l].options[choice.option[l]].bytes - form.layer[l].options[best_option].bytes;
      choice.option[l] = best_option;
    }
  }
}

// Spends what the budget has left: repeatedly makes the single change (one layer to another
// option, or the classifier onto the GPU) that lowers the cost most per extra byte.
void Improve(const Formulation& form, Choice& choice) {
  double left = form.capacity - choice.Bytes(form);
  for (;;) {
    double best_score = 0;
    size_t best_layer = 0, best_option = 0;
    bool found = false, output = false;
    auto consider = [&](double d_bytes, double d_cost) -> bool {
      if (d_cost >= -1e-12 || d_bytes > left) return false;
      const double score = d_bytes <= 0 ? 1e300 - d_cost : -d_cost / d_bytes;
      if (found && score <= best_score) return false;
      best_score = score;
      found = true;
      return true;
    };
    if (form.output >= 0 && !choice.output && consider(form.output_bytes, form.output_cost)) {
      output = true;
    }
    for (size_t l = 0; l < form.layer.size(); ++l) {
      const std::vector<LayerOption>& options = form.layer[l].options;
      const LayerOption& now = options[choice.option[l]];
      for (size_t j = 0; j < options.size(); ++j) {
        if (consider(options[j].bytes - now.bytes, options[j].cost - now.cost)) {
          best_layer = l;
          best_option = j;
          output = false;
        }
      }
    }
    if (!found) return;
    if (output) {
      choice.output = true;
      left -= form.output_bytes;
    } else {
      left -= form.layer[best_layer].options[best_option].bytes -
              form.layer[best_layer].options[choice.option[best_layer]].bytes;
      choice.option[best_layer] = best_option;
    }
  }
}

std::vector<double> ColumnValues(const std::vector<LayerGroups>& groups, const Formulation& form,
                                 const Choice& choice) {
  std::vector<double> x(static_cast<size_t>(form.lp.columns()), 0.0);
  for (size_t l = 0; l < groups.size(); ++l) {
    const LayerColumns& c = form.layer[l];
    const LayerOption& o = c.options[choice.option[l]];
    x[c.n] = static_cast<double>(o.groups);
    x[c.z] = o.groups > 0;
    x[c.w] = o.groups == groups[l].groups();
    if (c.a >= 0) x[c.a] = o.attention;
    x[c.first_option + choice.option[l]] = 1.0;
  }
  if (form.output >= 0) x[form.output] = choice.output;
  return x;
}

}  // namespace

absl::StatusOr<MipResult> SolvePlacementMip(const PlacementProblem& problem,
                                            const std::vector<LayerGroups>& groups,
                                            const GroupPlacement& start,
                                            const MipOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t cpu0 = std::clock();
  if (problem.budget_bytes < problem.MinimumBytes()) {
    return absl::InvalidArgumentError("the budget is below the minimum working set");
  }
  Formulation form = Build(problem, groups);
  OsiClpSolverInterface solver;
  solver.messageHandler()->setLogLevel(0);
  form.lp.Load(solver);
  solver.setObjSense(1.0);  // minimize

  // The LP relaxation, rounded and improved, is usually within a group of the optimum: a far
  // better first incumbent than the greedy one, and CBC then often stops at the root.
  solver.initialSolve();
  GroupPlacement start_for_mip = start;
  if (problem.objective == Objective::kCoverage) {
    // The coverage MIP places neurons only; the dense fill comes afterwards.
    std::fill(start_for_mip.attention_on_gpu.begin(), start_for_mip.attention_on_gpu.end(), 0);
    start_for_mip.output_on_gpu = false;
  }
  Choice incumbent = FromPlacement(form, start_for_mip);
  Improve(form, incumbent);
  if (solver.isProvenOptimal()) {
    for (bool up : {false, true}) {
      Choice rounded = Round(form, solver.getColSolution(), up);
      Shrink(form, rounded);
      Improve(form, rounded);
      if (rounded.Bytes(form) <= form.capacity && rounded.Cost(form) < incumbent.Cost(form)) {
        incumbent = rounded;
      }
    }
  }

  CbcModel model(solver);
  model.setLogLevel(options.log_level);
  model.messageHandler()->setLogLevel(options.log_level);
  model.solver()->messageHandler()->setLogLevel(0);
  model.setUseElapsedTime(true);  // the limit is wall time, what a user waits for
  model.setMaximumSeconds(options.time_limit_s);
  model.setAllowableFractionGap(options.relative_gap);
  model.setAllowableGap(0.0);
  model.setNumberThreads(0);
  std::vector<double> x0 = ColumnValues(groups, form, incumbent);
  model.setBestSolution(x0.data(), form.lp.columns(), incumbent.Cost(form), /*check=*/true);

  model.branchAndBound();

  MipResult result;
  result.time_limit_s = model.getMaximumSeconds();
  result.relative_gap = model.getAllowableFractionGap();
  result.columns = form.lp.columns();
  result.rows = form.lp.rows();
  result.integers = form.lp.integers();
  result.nodes = model.getNodeCount();
  const double* best = model.bestSolution();
  if (best == nullptr) {
    // CBC rejected even the start (numerical trouble): keep the start, which the caller checks
    // independently like any solution.
    result.placement = start_for_mip;
    result.status = "no solution, kept the start";
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
    return result;
  }
  result.objective = model.getObjValue() + form.objective_constant;
  result.bound =
      std::min(model.getBestPossibleObjValue(), model.getObjValue()) + form.objective_constant;
  if (problem.objective == Objective::kCoverage) {
    // Report coverage as a positive percentage; the bound is then an upper bound.
    result.objective = -result.objective;
    result.bound = -result.bound;
  }
  result.gap =
      std::abs(result.objective - result.bound) / std::max(1e-12, std::abs(result.objective));
  if (model.isProvenOptimal()) {
    result.status = result.gap <= 1e-9 ? "optimal" : "gap limit";
  } else if (model.isSecondsLimitReached()) {
    result.status = "time limit";
  } else {
    result.status = absl::StrCat("stopped (cbc status ", model.status(), ")");
  }

  const size_t L = problem.layers.size();
  GroupPlacement& p = result.placement;
  p.ffn_groups.assign(L, 0);
  p.attention_on_gpu.assign(L, 0);
  for (size_t l = 0; l < L; ++l) {
    const LayerColumns& c = form.layer[l];
    p.ffn_groups[l] = static_cast<int64_t>(std::llround(best[c.n]));
    if (c.a >= 0) p.attention_on_gpu[l] = best[c.a] > 0.5 ? 1 : 0;
  }
  if (form.output >= 0) p.output_on_gpu = best[form.output] > 0.5;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  return result;
}

}  // namespace pinfer
