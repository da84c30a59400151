#include "tools/profile/firing_plot.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pinfer {
namespace {

// Geometry (SVG user units = pixels).
constexpr double kWidth = 1200, kHeight = 540;
constexpr double kPlotTop = 90, kPlotHeight = 360;
constexpr double kPanelWidth = 420;
constexpr double kPanelLeft[2] = {85, 600};
constexpr double kLegendLeft = 1045;
constexpr int kMaxPointsPerLine = 500;

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Viridis, without its palest end (which vanishes on white).
std::string LineColor(double t) {
  static constexpr unsigned kStops[] = {0x440154, 0x482878, 0x3e4989, 0x31688e, 0x26828e,
                                        0x1f9e89, 0x35b779, 0x6ece58, 0xb5de2b};
  constexpr int n = sizeof(kStops) / sizeof(kStops[0]);
  t = std::clamp(t, 0.0, 1.0) * (n - 1);
  const int i = std::min(static_cast<int>(t), n - 2);
  const double f = t - i;
  auto channel = [&](int shift) {
    const double a = (kStops[i] >> shift) & 0xFF, b = (kStops[i + 1] >> shift) & 0xFF;
    return static_cast<int>(std::lround(a + (b - a) * f));
  };
  return absl::StrFormat("#%02x%02x%02x", channel(16), channel(8), channel(0));
}

std::string DecadeLabel(int exponent) {
  if (exponent >= 0)
    return absl::StrCat(static_cast<int64_t>(std::llround(std::pow(10, exponent))));
  if (exponent >= -4) return absl::StrFormat("%.*f", -exponent, std::pow(10.0, exponent));
  return absl::StrCat("1e", exponent);
}

struct Axes {
  double left, width;
  int min_exponent;  // the y axis runs from 10^min_exponent (bottom) to 1 (top)
  double Y(double frequency) const {
    const double e = std::clamp(std::log10(frequency), static_cast<double>(min_exponent), 0.0);
    return kPlotTop + kPlotHeight * (e / min_exponent);
  }
};

void DrawYAxis(std::string& svg, const Axes& a, bool labels) {
  for (int e = a.min_exponent; e <= 0; ++e) {
    const double y = a.Y(std::pow(10.0, e));
    absl::StrAppend(
        &svg, absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>)"
                              "\n",
                              a.left, y, a.left + a.width, y));
    absl::StrAppend(
        &svg, absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>)"
                              "\n",
                              a.left - 6, y, a.left, y));
    if (labels) {
      absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="tick" )"
                                            R"(text-anchor="end">%s</text>)"
                                            "\n",
                                            a.left - 9, y + 4, DecadeLabel(e)));
    }
    if (e == 0) break;
    for (int m = 2; m <= 9; ++m) {  // minor ticks
      const double ym = a.Y(m * std::pow(10.0, e));
      absl::StrAppend(
          &svg, absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>)"
                                "\n",
                                a.left - 3, ym, a.left, ym));
    }
  }
}

void DrawXTick(std::string& svg, double x, const std::string& label, bool grid) {
  const double bottom = kPlotTop + kPlotHeight;
  if (grid) {
    absl::StrAppend(
        &svg, absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>)"
                              "\n",
                              x, kPlotTop, x, bottom));
  }
  absl::StrAppend(&svg,
                  absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="axis"/>)"
                                  "\n",
                                  x, bottom, x, bottom + (label.empty() ? 3 : 6)));
  if (!label.empty()) {
    absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="tick" )"
                                          R"(text-anchor="middle">%s</text>)"
                                          "\n",
                                          x, bottom + 20, label));
  }
}

void DrawFrame(std::string& svg, const Axes& a, const std::string& heading,
               const std::string& x_label) {
  absl::StrAppend(&svg, absl::StrFormat(R"(<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" )"
                                        R"(class="frame"/>)"
                                        "\n",
                                        a.left, kPlotTop, a.width, kPlotHeight));
  absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="heading" )"
                                        R"(text-anchor="middle">%s</text>)"
                                        "\n",
                                        a.left + a.width / 2, kPlotTop - 10, Escape(heading)));
  absl::StrAppend(
      &svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="label" )"
                            R"(text-anchor="middle">%s</text>)"
                            "\n",
                            a.left + a.width / 2, kPlotTop + kPlotHeight + 44, Escape(x_label)));
}

std::string Polyline(const std::vector<std::pair<double, double>>& points,
                     const std::string& color) {
  std::string out = absl::StrFormat(R"(<polyline class="series" stroke="%s" points=")", color);
  for (size_t i = 0; i < points.size(); ++i) {
    absl::StrAppend(&out, i ? " " : "",
                    absl::StrFormat("%.1f,%.1f", points[i].first, points[i].second));
  }
  absl::StrAppend(&out, "\"/>\n");
  return out;
}

}  // namespace

std::vector<int64_t> PlottedLayers(int64_t n_layers, int max_layers) {
  std::vector<int64_t> layers;
  if (n_layers <= max_layers || max_layers < 2) {
    for (int64_t l = 0; l < std::min<int64_t>(n_layers, std::max(max_layers, 1)); ++l) {
      layers.push_back(l);
    }
    return layers;
  }
  for (int k = 0; k < max_layers; ++k) {
    const int64_t l = std::llround(static_cast<double>(k) * (n_layers - 1) / (max_layers - 1));
    if (layers.empty() || layers.back() != l) layers.push_back(l);
  }
  return layers;
}

std::string RenderFiringPlotSvg(const ActivationProfile& profile,
                                const FiringPlotOptions& options) {
  const int64_t n = profile.n_ff;
  const std::vector<int64_t> layers = PlottedLayers(profile.n_layers, options.max_layers);

  // Sorted frequencies of each plotted layer, and the smallest non-zero one for the y range.
  std::vector<std::vector<double>> sorted;
  double smallest = 1.0;
  for (int64_t l : layers) {
    std::vector<double> f(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) f[static_cast<size_t>(i)] = profile.Frequency(l, i);
    std::sort(f.begin(), f.end(), std::greater<double>());
    for (double v : f) {
      if (v > 0) smallest = std::min(smallest, v);
    }
    sorted.push_back(std::move(f));
  }
  const int min_exponent = std::min(-1, static_cast<int>(std::floor(std::log10(smallest))));
  const Axes linear{kPanelLeft[0], kPanelWidth, min_exponent};
  const Axes loglog{kPanelLeft[1], kPanelWidth, min_exponent};
  const double log_n = std::log10(static_cast<double>(std::max<int64_t>(n, 10)));
  auto x_linear = [&](double fraction) { return linear.left + linear.width * fraction; };
  auto x_log = [&](double rank) { return loglog.left + loglog.width * std::log10(rank) / log_n; };

  std::string svg =
      absl::StrFormat(R"(<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" )"
                      R"(viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif">)"
                      "\n",
                      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppend(&svg, R"(<style>
  .frame { fill: none; stroke: #333; stroke-width: 1; }
  .axis { stroke: #333; stroke-width: 1; }
  .grid { stroke: #e3e3e3; stroke-width: 1; }
  .series { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
  .tick { font-size: 12px; fill: #333; }
  .label { font-size: 13px; fill: #111; }
  .heading { font-size: 13px; fill: #111; font-weight: bold; }
  .legend { font-size: 12px; fill: #111; }
</style>
<rect width="100%" height="100%" fill="white"/>
)");
  absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="30" font-size="18" )"
                                        R"(font-weight="bold">%s</text>)"
                                        "\n",
                                        kPanelLeft[0], Escape(options.title)));
  absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="52" font-size="13" )"
                                        R"(fill="#555">%s</text>)"
                                        "\n",
                                        kPanelLeft[0], Escape(options.subtitle)));

  // Left panel: frequency against the fraction of the layer's neurons.
  DrawYAxis(svg, linear, /*labels=*/true);
  for (int k = 0; k <= 10; ++k) {
    DrawXTick(svg, x_linear(k / 10.0), k % 2 == 0 ? absl::StrCat(k * 10, "%") : "", true);
  }
  DrawFrame(svg, linear, "sorted firing frequency",
            "neurons, most frequent first (fraction of the layer)");
  absl::StrAppend(&svg,
                  absl::StrFormat(R"svg(<text transform="translate(%.1f,%.1f) rotate(-90)" )svg"
                                  R"svg(class="label" text-anchor="middle">)svg"
                                  R"svg(firing frequency (fraction of tokens, log scale)</text>)svg"
                                  "\n",
                                  kPanelLeft[0] - 58, kPlotTop + kPlotHeight / 2));

  // Right panel: against the rank, both axes logarithmic.
  DrawYAxis(svg, loglog, /*labels=*/true);
  for (int e = 0; std::pow(10.0, e) <= static_cast<double>(n) * 1.0001; ++e) {
    const double decade = std::pow(10.0, e);
    DrawXTick(svg, x_log(decade), DecadeLabel(e), true);
    for (int m = 2; m <= 9 && m * decade <= n; ++m) DrawXTick(svg, x_log(m * decade), "", false);
  }
  DrawFrame(svg, loglog, "log-log: a power law is a straight line", "neuron rank (log scale)");

  // The series.
  for (size_t s = 0; s < layers.size(); ++s) {
    const std::vector<double>& f = sorted[s];
    const std::string color = LineColor(layers.size() > 1 ? double(s) / (layers.size() - 1) : 0);
    const int64_t positive = std::count_if(f.begin(), f.end(), [](double v) { return v > 0; });
    if (positive == 0) continue;
    std::vector<std::pair<double, double>> left, right;
    // Evenly spaced ranks on the left, log-spaced on the right; the last firing neuron always.
    const int64_t step = std::max<int64_t>(1, positive / kMaxPointsPerLine);
    for (int64_t k = 0; k < positive; k += step) {
      left.emplace_back(x_linear((k + 0.5) / n), linear.Y(f[static_cast<size_t>(k)]));
    }
    left.emplace_back(x_linear((positive - 0.5) / n),
                      linear.Y(f[static_cast<size_t>(positive - 1)]));
    int64_t last_rank = 0;
    for (int p = 0; p <= kMaxPointsPerLine; ++p) {
      const int64_t rank = std::llround(
          std::pow(static_cast<double>(positive), static_cast<double>(p) / kMaxPointsPerLine));
      if (rank <= last_rank) continue;
      last_rank = rank;
      right.emplace_back(x_log(static_cast<double>(rank)),
                         loglog.Y(f[static_cast<size_t>(rank - 1)]));
    }
    absl::StrAppend(&svg, absl::StrFormat("<g><title>layer %d</title>\n", layers[s]));
    absl::StrAppend(&svg, Polyline(left, color), Polyline(right, color), "</g>\n");
  }

  // Legend.
  double y = kPlotTop + 8;
  absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="heading">layer</text>)"
                                        "\n",
                                        kLegendLeft, y));
  for (size_t s = 0; s < layers.size(); ++s) {
    y += 20;
    const std::string color = LineColor(layers.size() > 1 ? double(s) / (layers.size() - 1) : 0);
    const int64_t never = std::count(sorted[s].begin(), sorted[s].end(), 0.0);
    absl::StrAppend(&svg, absl::StrFormat(R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" )"
                                          R"(stroke="%s" stroke-width="3"/>)"
                                          "\n",
                                          kLegendLeft, y - 4, kLegendLeft + 24, y - 4, color));
    absl::StrAppend(
        &svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="legend">%d%s</text>)"
                              "\n",
                              kLegendLeft + 30, y, layers[s],
                              never > 0 ? absl::StrFormat("  (%d never)", never) : std::string()));
  }
  if (static_cast<int64_t>(layers.size()) < profile.n_layers) {
    absl::StrAppend(&svg, absl::StrFormat(R"(<text x="%.1f" y="%.1f" class="legend" )"
                                          R"(fill="#555">%d of %d layers</text>)"
                                          "\n",
                                          kLegendLeft, y + 24, layers.size(), profile.n_layers));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace pinfer
