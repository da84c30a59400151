// The placement solver against exhaustive search on small instances, and its invariants.
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "gtest/gtest.h"
#include "tools/solve_placement/cost_model.h"
#include "tools/solve_placement/greedy_placement.h"
#include "tools/solve_placement/solve_placement.h"
#include "tools/solve_placement/synthetic_problem.h"

namespace pinfer {
namespace {

SolveOptions Exact() {
  SolveOptions o;
  o.mip.relative_gap = 0;
  o.mip.time_limit_s = 60;
  return o;
}

// A small problem with random sizes and frequencies. `sync_us` sets the synchronisation cost and
// with it the minimum shares.
PlacementProblem RandomProblem(std::mt19937_64& rng, Objective objective, int layers, int n_ff,
                               int group, double sync_us) {
  std::uniform_real_distribution<double> u(0, 1);
  auto between = [&](double lo, double hi) { return lo + (hi - lo) * u(rng); };
  PlacementProblem p;
  p.dim = 64;
  p.group_size = group;
  p.objective = objective;
  p.workspace_bytes = 1000;
  p.norm_bytes = 100;
  p.output_bytes = static_cast<uint64_t>(between(2000, 8000));
  p.hardware.link_latency_s = 0;
  p.hardware.sync_s = sync_us * 1e-6;
  p.hardware.gpu_layer_overhead_s = between(0, 0.2e-6);
  for (int l = 0; l < layers; ++l) {
    LayerProblem layer;
    const double skew = between(1, 4);
    for (int i = 0; i < n_ff; ++i) {
      layer.frequency.push_back(static_cast<float>(std::pow(u(rng), skew)));
    }
    layer.neuron_bytes = static_cast<uint64_t>(between(100, 300));
    layer.attention_bytes = static_cast<uint64_t>(between(2000, 20000));
    layer.kv_bytes = static_cast<uint64_t>(between(1000, 8000));
    layer.kv_read_bytes = layer.kv_bytes / 2;
    layer.predictor_bytes = static_cast<uint64_t>(between(500, 5000));
    p.layers.push_back(std::move(layer));
  }
  return p;
}

struct BruteForce {
  double best = 0;  // coverage (max) or latency (min)
  int feasible = 0;
};

// Every combination of per-layer group counts (0 or at least the minimum share), attention
// placement and classifier placement (latency only), checked and evaluated by cost_model.h.
BruteForce Exhaustive(const PlacementProblem& p) {
  const std::vector<LayerGroups> groups = BuildGroups(p);
  const bool latency = p.objective == Objective::kLatency;
  BruteForce result;
  result.best = latency ? 1e300 : -1;
  GroupPlacement g;
  g.ffn_groups.assign(p.layers.size(), 0);
  g.attention_on_gpu.assign(p.layers.size(), 0);
  std::function<void(size_t)> visit = [&](size_t l) {
    if (l == p.layers.size()) {
      for (int output = 0; output <= (latency ? 1 : 0); ++output) {
        g.output_on_gpu = output != 0;
        const NeuronPlacement n = ToNeurons(groups, g);
        if (!CheckFeasible(p, groups, n).ok()) continue;
        ++result.feasible;
        const PlacementFigures f = Evaluate(p, n);
        result.best =
            latency ? std::min(result.best, f.latency_s) : std::max(result.best, f.coverage);
      }
      return;
    }
    for (int64_t k = 0; k <= groups[l].groups(); ++k) {
      if (k > 0 && k < groups[l].min_share_groups) continue;
      for (int a = 0; a <= (latency ? 1 : 0); ++a) {
        g.ffn_groups[l] = k;
        g.attention_on_gpu[l] = static_cast<uint8_t>(a);
        visit(l + 1);
      }
    }
    g.ffn_groups[l] = 0;
    g.attention_on_gpu[l] = 0;
  };
  visit(0);
  return result;
}

void ExpectMatchesBruteForce(Objective objective, uint64_t seed, int instances) {
  std::mt19937_64 rng(seed);
  int with_share = 0, short_groups = 0;
  for (int i = 0; i < instances; ++i) {
    const int n_ff = (i % 3 == 0) ? 200 : 256;  // 200: a short last group of 8
    PlacementProblem p = RandomProblem(rng, objective, 3, n_ff, 64, 0.5 * (i % 4));
    const uint64_t lo = p.MinimumBytes(), hi = p.EverythingBytes();
    p.budget_bytes = lo + static_cast<uint64_t>((hi - lo) * (0.1 + 0.8 * (i % 7) / 6.0));
    const BruteForce brute = Exhaustive(p);
    absl::StatusOr<PlacementResult> r = SolvePlacement(p, Exact());
    ASSERT_TRUE(r.ok()) << r.status();
    SCOPED_TRACE(testing::Message() << "instance " << i << ", " << brute.feasible
                                    << " feasible placements, solver " << r->solver);
    for (const LayerGroups& g : r->groups) with_share += g.min_share_groups > 1;
    short_groups += n_ff % 64 != 0;
    if (objective == Objective::kCoverage) {
      EXPECT_NEAR(r->figures.coverage, brute.best, 1e-9);
      EXPECT_LE(r->greedy_figures.coverage, brute.best + 1e-12);
    } else {
      EXPECT_NEAR(r->figures.latency_s, brute.best, 1e-9 * brute.best);
      EXPECT_GE(r->greedy_figures.latency_s, brute.best * (1 - 1e-12));
    }
  }
  // The instances exercise the minimum share and the short last group.
  EXPECT_GT(with_share, 0);
  EXPECT_GT(short_groups, 0);
}

TEST(SolverTest, CoverageMatchesBruteForce) {
  ExpectMatchesBruteForce(Objective::kCoverage, 1, 40);
}

TEST(SolverTest, LatencyMatchesBruteForce) { ExpectMatchesBruteForce(Objective::kLatency, 2, 40); }

TEST(SolverTest, MoreVramNeverGivesLessCoverageOrMoreLatency) {
  for (Objective objective : {Objective::kCoverage, Objective::kLatency}) {
    std::mt19937_64 rng(3);
    PlacementProblem p = RandomProblem(rng, objective, 6, 512, 32, 1.0);
    const uint64_t lo = p.MinimumBytes(), hi = p.EverythingBytes();
    double last_coverage = -1, last_latency = 1e300;
    for (int step = 0; step <= 24; ++step) {
      p.budget_bytes = lo + (hi - lo) * static_cast<uint64_t>(step) / 24;
      absl::StatusOr<PlacementResult> r = SolvePlacement(p, Exact());
      ASSERT_TRUE(r.ok()) << r.status();
      if (objective == Objective::kCoverage) {
        EXPECT_GE(r->figures.coverage, last_coverage - 1e-12) << "budget " << p.budget_bytes;
        last_coverage = r->figures.coverage;
      } else {
        EXPECT_LE(r->figures.latency_s, last_latency * (1 + 1e-12)) << "budget " << p.budget_bytes;
        last_latency = r->figures.latency_s;
      }
    }
    if (objective == Objective::kCoverage) {
      EXPECT_DOUBLE_EQ(last_coverage, 1.0);
    }
  }
}

TEST(SolverTest, RespectsTheMinimumShare) {
  std::mt19937_64 rng(4);
  // A synchronisation worth several groups: each layer holds none or at least a few groups.
  PlacementProblem p = RandomProblem(rng, Objective::kCoverage, 8, 1024, 32, 1.0);
  const std::vector<LayerGroups> groups = BuildGroups(p);
  int64_t largest_share = 0;
  for (const LayerGroups& g : groups) largest_share = std::max(largest_share, g.min_share_groups);
  ASSERT_GT(largest_share, 2);
  const uint64_t lo = p.MinimumBytes(), hi = p.EverythingBytes();
  int split_layers = 0;
  for (int step = 1; step < 16; ++step) {
    p.budget_bytes = lo + (hi - lo) * static_cast<uint64_t>(step) / 16;
    for (bool greedy : {false, true}) {
      SolveOptions options = Exact();
      options.greedy_only = greedy;
      absl::StatusOr<PlacementResult> r = SolvePlacement(p, options);
      ASSERT_TRUE(r.ok()) << r.status();
      for (size_t l = 0; l < p.layers.size(); ++l) {
        const int64_t hot = static_cast<int64_t>(r->placement.gpu_neurons[l].size());
        const int64_t minimum = groups[l].NeuronsInFirst(groups[l].min_share_groups);
        EXPECT_TRUE(hot == 0 || hot >= minimum)
            << "layer " << l << ": " << hot << " GPU neurons, minimum share " << minimum;
        split_layers += hot > 0 && hot < p.layers[l].n_ff();
      }
    }
  }
  EXPECT_GT(split_layers, 0);
}

TEST(SolverTest, MinimumShareFollowsTheSyncCost) {
  std::mt19937_64 rng(5);
  PlacementProblem p = RandomProblem(rng, Objective::kCoverage, 1, 1024, 32, 0.0);
  EXPECT_EQ(BuildGroups(p)[0].min_share_groups, 1);  // free synchronisation: any share pays
  p.hardware.sync_s = 1.0;                           // a second per token: never worth it
  EXPECT_EQ(BuildGroups(p)[0].min_share_groups, BuildGroups(p)[0].groups());
}

TEST(SolverTest, BudgetBelowTheMinimumNamesTheMinimum) {
  std::mt19937_64 rng(6);
  PlacementProblem p = RandomProblem(rng, Objective::kCoverage, 2, 128, 32, 1.0);
  p.budget_bytes = p.MinimumBytes() - 1;
  absl::StatusOr<PlacementResult> r = SolvePlacement(p, Exact());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("below the minimum working set of"), std::string::npos);
  EXPECT_NE(r.status().message().find("1100 bytes"), std::string::npos) << r.status();
  p.budget_bytes = p.MinimumBytes();  // exactly the minimum: everything on the CPU
  r = SolvePlacement(p, Exact());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->figures.coverage, 0.0);
  EXPECT_EQ(r->figures.bytes.total(), p.MinimumBytes());
}

TEST(SolverTest, BudgetAboveEverythingPutsEverythingOnTheGpu) {
  std::mt19937_64 rng(7);
  for (Objective objective : {Objective::kCoverage, Objective::kLatency}) {
    PlacementProblem p = RandomProblem(rng, objective, 3, 200, 64, 1.0);
    p.budget_bytes = p.EverythingBytes();
    absl::StatusOr<PlacementResult> r = SolvePlacement(p, Exact());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->solver, "all fits");
    EXPECT_DOUBLE_EQ(r->figures.coverage, 1.0);
    EXPECT_EQ(r->figures.bytes.total(), p.EverythingBytes());
    EXPECT_EQ(r->figures.sync_s, 0.0);
    EXPECT_TRUE(r->placement.output_on_gpu);
    for (size_t l = 0; l < p.layers.size(); ++l) {
      EXPECT_EQ(r->placement.gpu_neurons[l].size(), 200u);
      EXPECT_EQ(r->placement.attention_on_gpu[l], 1);
    }
    p.budget_bytes = p.EverythingBytes() - 1;  // one byte short: a real solve
    r = SolvePlacement(p, Exact());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NE(r->solver, "all fits");
    EXPECT_LE(r->figures.bytes.total(), p.budget_bytes);
  }
}

TEST(SolverTest, CheckerRejectsInfeasiblePlacements) {
  std::mt19937_64 rng(8);
  PlacementProblem p = RandomProblem(rng, Objective::kCoverage, 2, 128, 32, 20.0);
  const std::vector<LayerGroups> groups = BuildGroups(p);
  ASSERT_GT(groups[0].min_share_groups, 1);
  p.budget_bytes = p.EverythingBytes();
  NeuronPlacement n;
  n.gpu_neurons = {{0}, {}};  // one neuron: below layer 0's minimum share
  n.attention_on_gpu = {0, 0};
  EXPECT_NE(CheckFeasible(p, groups, n).message().find("minimum share"), std::string::npos);
  n.gpu_neurons = {{}, {5, 5}};
  EXPECT_NE(CheckFeasible(p, groups, n).message().find("sorted, unique"), std::string::npos);
  n.gpu_neurons = {{}, {}};
  n.attention_on_gpu = {1, 1};
  n.output_on_gpu = true;
  p.budget_bytes = p.MinimumBytes() + p.output_bytes;
  EXPECT_NE(CheckFeasible(p, groups, n).message().find("exceed the budget"), std::string::npos);
}

TEST(SolverTest, GroupsFollowFrequencyAndTheLastOneIsShort) {
  PlacementProblem p;
  p.dim = 8;
  p.group_size = 2;
  LayerProblem layer;
  layer.frequency = {0.1f, 0.9f, 0.5f, 0.9f, 0.0f};
  layer.neuron_bytes = 10;
  p.layers = {layer};
  p.hardware.sync_s = 0;
  p.hardware.link_latency_s = 0;
  const LayerGroups g = BuildGroups(p)[0];
  EXPECT_EQ(g.order, (std::vector<int32_t>{1, 3, 2, 0, 4}));  // ties keep index order
  EXPECT_EQ(g.group_neurons, (std::vector<int32_t>{2, 2, 1}));
  EXPECT_NEAR(g.group_mass[0], 1.8, 1e-6);
  EXPECT_NEAR(g.group_mass[1], 0.6, 1e-6);
  EXPECT_NEAR(g.total_mass, 2.4, 1e-6);
  GroupPlacement placement{{2}, {0}, false};
  EXPECT_EQ(ToNeurons({g}, placement).gpu_neurons[0], (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(SolverTest, SeventyBShapeSolvesWithinOnePercent) {
  // Llama-2 70B's hyperparameters (bench/synth/shapes.h has the named shapes; this test does not
  // depend on the bench tree).
  ModelConfig shape;
  shape.dim = 8192;
  shape.n_ff = 28672;
  shape.n_layers = 80;
  shape.n_heads = 64;
  shape.n_kv_heads = 8;
  shape.head_dim = 128;
  shape.vocab_size = 32000;
  shape.context_length = 4096;
  for (Objective objective : {Objective::kCoverage, Objective::kLatency}) {
    SyntheticOptions options;
    options.dtype = DType::kQ4_0;
    options.budget_bytes = 8ull << 30;
    options.objective = objective;
    absl::StatusOr<PlacementProblem> p = SyntheticProblem(shape, options);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->layers.size(), 80u);
    EXPECT_EQ(p->layers[0].n_ff(), 28672);
    EXPECT_EQ(p->layers[0].neuron_bytes, 3u * 8192 / 32 * 18);
    absl::StatusOr<PlacementResult> r = SolvePlacement(*p, SolveOptions{});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_LT(r->mip.gap, 0.01) << r->solver;
    EXPECT_LE(r->figures.bytes.total(), p->budget_bytes);
    // The MIP's incumbent starts from the greedy placement, so it is never worse.
    if (objective == Objective::kCoverage) {
      EXPECT_GE(r->figures.coverage, r->greedy_figures.coverage - 1e-12);
      EXPECT_GT(r->figures.coverage, 0.3);
    } else {
      EXPECT_LE(r->figures.latency_s, r->greedy_figures.latency_s * (1 + 1e-12));
    }
  }
}

TEST(SolverTest, SyntheticProblemOfAGateLessModelHasTwoRowsPerNeuron) {
  ModelConfig opt;  // OPT-6.7B's shape: fc1 and fc2, LayerNorm with biases
  opt.architecture = "opt";
  opt.dim = 4096;
  opt.n_ff = 16384;
  opt.n_layers = 32;
  opt.n_heads = opt.n_kv_heads = 32;
  opt.head_dim = 128;
  opt.vocab_size = 50272;
  opt.context_length = 2048;
  opt.norm = NormKind::kLayer;
  opt.ffn_gated = false;
  SyntheticOptions options;
  options.dtype = DType::kQ8_0;
  options.budget_bytes = 4ull << 30;
  absl::StatusOr<PlacementProblem> p = SyntheticProblem(opt, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->layers[0].neuron_bytes, 2u * 4096 / 32 * 34);
  EXPECT_EQ(p->norm_bytes, 2u * 4 * 4096 * (2 * 32 + 1));  // weight and bias
  opt.ffn_gated = true;
  opt.norm = NormKind::kRms;
  p = SyntheticProblem(opt, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->layers[0].neuron_bytes, 3u * 4096 / 32 * 34);
  EXPECT_EQ(p->norm_bytes, 4u * 4096 * (2 * 32 + 1));
}

TEST(SolverTest, PowerLawProfileHasTheRequestedDensity) {
  PowerLawProfile profile;
  profile.density = 0.1;
  const std::vector<std::vector<float>> f = PowerLawFrequencies(4, 11008, profile);
  for (const std::vector<float>& layer : f) {
    double sum = 0;
    for (float v : layer) sum += v;
    const double density = sum / static_cast<double>(layer.size());
    EXPECT_GT(density, 0.06 - 0.002);  // per-layer densities vary in [0.6, 1.4] x 0.1
    EXPECT_LT(density, 0.14 + 0.002);
    EXPECT_EQ(*std::max_element(layer.begin(), layer.end()), 1.0f);
  }
  EXPECT_EQ(PowerLawFrequencies(4, 11008, profile), f);  // same seed, same profile
}

}  // namespace
}  // namespace pinfer
