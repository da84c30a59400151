// The SVG plot and the report's statistics on hand-made profiles.
#include "tools/profile/firing_plot.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tools/profile/profile_report.h"

namespace pinfer {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Layer l: neuron i fires on round(tokens / (i + 1)^(1 + l/4)) tokens (a power law), some never.
ActivationProfile PowerLawProfile(int64_t layers, int64_t n_ff, int64_t tokens) {
  ActivationProfile p;
  p.model_digest = "0123456789abcdef";
  p.n_layers = layers;
  p.n_ff = n_ff;
  p.tokens = tokens;
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t i = 0; i < n_ff; ++i) {
      p.fire_count.push_back(
          static_cast<int32_t>(std::floor(tokens / std::pow(i + 1.0, 1.0 + l / 4.0))));
      p.mean_abs.push_back(0.0f);
    }
    p.threshold.push_back(0.0f);
  }
  return p;
}

TEST(FiringPlotTest, OneLinePerLayerInEachPanelWithAxesAndLegend) {
  const ActivationProfile p = PowerLawProfile(4, 1000, 10000);
  const std::string svg = RenderFiringPlotSvg(p, {"relu <model> & co", "10000 tokens", 12});
  EXPECT_TRUE(absl::StartsWith(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_TRUE(absl::EndsWith(svg, "</svg>\n"));
  EXPECT_EQ(Count(svg, "<polyline"), 8);  // 4 layers x 2 panels
  EXPECT_EQ(Count(svg, "<g>"), Count(svg, "</g>"));
  EXPECT_TRUE(absl::StrContains(svg, "relu &lt;model&gt; &amp; co"));  // escaped
  for (const char* label : {"firing frequency (fraction of tokens, log scale)", "neuron rank",
                            ">0.0001<", ">0.001<", ">0.01<", ">0.1<", ">1<", ">100%<", ">1000<",
                            "a power law is a straight line", ">layer<"}) {
    EXPECT_TRUE(absl::StrContains(svg, label)) << label;
  }
  // Layer 3 has neurons that never fire (floor < 1): the legend says how many.
  EXPECT_TRUE(absl::StrContains(svg, "never)")) << svg.substr(svg.size() - 2000);
  EXPECT_FALSE(absl::StrContains(svg, "nan"));
  EXPECT_FALSE(absl::StrContains(svg, "inf"));
}

TEST(FiringPlotTest, DeepModelsShowASubsetOfLayers) {
  EXPECT_EQ(PlottedLayers(4, 12), (std::vector<int64_t>{0, 1, 2, 3}));
  const std::vector<int64_t> layers = PlottedLayers(80, 12);
  ASSERT_EQ(layers.size(), 12u);
  EXPECT_EQ(layers.front(), 0);
  EXPECT_EQ(layers.back(), 79);
  const std::string svg = RenderFiringPlotSvg(PowerLawProfile(80, 64, 500), {"deep", "", 12});
  EXPECT_EQ(Count(svg, "<polyline"), 24);
  EXPECT_TRUE(absl::StrContains(svg, "12 of 80 layers"));
}

TEST(FiringPlotTest, AProfileWithoutFiringsStillRenders) {
  ActivationProfile p = PowerLawProfile(2, 8, 10);
  std::fill(p.fire_count.begin(), p.fire_count.end(), 0);
  const std::string svg = RenderFiringPlotSvg(p, {"silent", "", 12});
  EXPECT_EQ(Count(svg, "<polyline"), 0);
  EXPECT_TRUE(absl::EndsWith(svg, "</svg>\n"));
}

TEST(ProfileReportTest, ConcentrationIsTheSmallestNeuronShare) {
  // 10 neurons: one fires 50 times, one 30, eight twice: 96 firings in all.
  std::vector<int64_t> counts = {2, 50, 2, 2, 30, 2, 2, 2, 2, 2};
  EXPECT_DOUBLE_EQ(NeuronFractionForShare(counts, 0.5), 0.1);  // 50 >= 48
  EXPECT_DOUBLE_EQ(NeuronFractionForShare(counts, 0.8), 0.2);  // 80 >= 76.8
  EXPECT_DOUBLE_EQ(NeuronFractionForShare(counts, 0.9), 0.6);  // 88 >= 86.4 > 86
  EXPECT_DOUBLE_EQ(NeuronFractionForShare(counts, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(NeuronFractionForShare({0, 0}, 0.9), 0.0);

  const ActivationProfile p = PowerLawProfile(2, 100, 1000);
  ProfileReport report;
  FillLayerStats(p, report);
  ASSERT_EQ(report.layers.size(), 2u);
  EXPECT_DOUBLE_EQ(report.layers[0].density, p.LayerDensity(0));
  EXPECT_DOUBLE_EQ(report.layers[0].max_frequency, 1.0);
  EXPECT_LT(report.layers[1].neurons_for_share[0], report.layers[0].neurons_for_share[0]);
  EXPECT_DOUBLE_EQ(report.mean_density, (p.LayerDensity(0) + p.LayerDensity(1)) / 2);
  const nlohmann::json j = report.ToJson();
  EXPECT_EQ(j["layers"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["layers"][1]["neurons_for_80"].get<double>(),
                   report.layers[1].neurons_for_share[0]);
  EXPECT_TRUE(absl::StrContains(report.ToText(), "neurons for 80%/90%/99%"));
}

}  // namespace
}  // namespace pinfer
