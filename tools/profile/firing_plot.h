// The plot pi-profile writes beside the profile (model.profile.svg): per layer, the neurons'
// firing frequencies sorted from the most to the least frequent, on a logarithmic y axis. Left:
// against the fraction of the layer's neurons (how much of the layer a hot set covers); right:
// against the rank on a log axis too, where a power law is a straight line. One line per layer
// (at most `max_layers`, evenly spaced from the first to the last, for deep models). Plain SVG
// text, no plotting library.
#pragma once

#include <string>

#include "runtime/model/activation_profile.h"

namespace pinfer {

struct FiringPlotOptions {
  std::string title;     // e.g. the model's name
  std::string subtitle;  // e.g. tokens and dataset
  int max_layers = 12;
};

std::string RenderFiringPlotSvg(const ActivationProfile& profile, const FiringPlotOptions& options);

// Layers drawn for a model of `n_layers`: all up to `max_layers`, else evenly spaced ones
// including the first and the last.
std::vector<int64_t> PlottedLayers(int64_t n_layers, int max_layers);

}  // namespace pinfer
