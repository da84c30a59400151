#include "tests/synth/firing_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "format/pi_file.h"
#include "gtest/gtest.h"

namespace pinfer::synth::testing {

void ExpectFiringMatchesPlanted(const std::string& model_path, const SynthReport& report,
                                const std::vector<std::vector<int64_t>>& fired, int64_t tokens) {
  absl::StatusOr<std::unique_ptr<PiFile>> file = PiFile::Open(model_path);
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* planted_info = (*file)->Find(kPlantedProbabilityTensor);
  ASSERT_NE(planted_info, nullptr);
  const float* planted = (*file)->DataAs<float>(*planted_info);
  const auto n_layers = static_cast<int64_t>(planted_info->shape[0]);
  const auto n_ff = static_cast<int64_t>(planted_info->shape[1]);
  ASSERT_EQ(static_cast<int64_t>(fired.size()), n_layers);
  const double n = static_cast<double>(tokens);

  for (int64_t l = 0; l < n_layers; ++l) {
    SCOPED_TRACE(::testing::Message() << "layer " << l);
    std::vector<double> p(planted + l * n_ff, planted + (l + 1) * n_ff);
    std::vector<double> f(static_cast<size_t>(n_ff));
    for (int64_t i = 0; i < n_ff; ++i) f[static_cast<size_t>(i)] = fired[l][i] / n;
    const double mean_p = std::accumulate(p.begin(), p.end(), 0.0) / n_ff;
    const double mean_f = std::accumulate(f.begin(), f.end(), 0.0) / n_ff;
    EXPECT_NEAR(mean_f, mean_p, 0.1 * mean_p) << "mean density";

    // Neurons grouped by planted probability (eight groups by rank), each group's mean frequency.
    std::vector<size_t> order(static_cast<size_t>(n_ff));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    constexpr int kGroups = 8;
    for (int group = 0; group < kGroups; ++group) {
      const size_t lo = order.size() * group / kGroups, hi = order.size() * (group + 1) / kGroups;
      double sp = 0, sf = 0;
      for (size_t k = lo; k < hi; ++k) {
        sp += p[order[k]];
        sf += f[order[k]];
      }
      sp /= static_cast<double>(hi - lo);
      sf /= static_cast<double>(hi - lo);
      // Sampling noise of a group mean, plus a relative model tolerance.
      const double noise = 3 * std::sqrt(sp * (1 - sp) / (n * static_cast<double>(hi - lo)));
      EXPECT_NEAR(sf, sp, noise + 0.15 * sp) << "group " << group;
    }
    // The hot set fires almost always, as planted.
    double hot = 0;
    for (size_t k = 0; k < static_cast<size_t>(report.hot_neurons); ++k) hot += f[order[k]];
    hot /= static_cast<double>(report.hot_neurons);
    EXPECT_NEAR(hot, report.hot_probability, 0.03);
    // Per neuron: the planted probability explains the measured frequency.
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n_ff; ++i) {
      const double dx = p[i] - mean_p, dy = f[i] - mean_f;
      sxy += dx * dy;
      sxx += dx * dx;
      syy += dy * dy;
    }
    EXPECT_GT(sxy / std::sqrt(sxx * syy), 0.95) << "correlation of planted and measured";
    std::printf(
        "layer %lld: density planted %.4f measured %.4f; hot set planted %.3f measured %.3f\n",
        static_cast<long long>(l), mean_p, mean_f, report.hot_probability, hot);
  }
}

}  // namespace pinfer::synth::testing
