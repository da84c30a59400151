// The greedy baseline the MIP is reported against, and the dense fill shared by both solvers in
// the coverage objective.
//
// Greedy: every unit has a value and a byte cost. Units are a layer's first FFN share (the prefix
// of at least its minimum share of groups that, with the layer's predictor, has the most mass per
// byte), then its next groups one at a time; for the latency objective also each layer's attention
// + KV cache and the classifier. Value: coverage - the unit's activation mass; latency - the CPU
// time it takes off the critical path. The unit with the most value per byte is taken while it fits
// (a layer whose next unit does not fit stops growing). This is PowerInfer-style "hottest
// neurons per byte first", made to respect the constraints.
#pragma once

#include <vector>

#include "tools/solve_placement/placement_problem.h"

namespace pinfer {

// `naive`: a layer opens with exactly its minimum share (plus the predictor) instead of its best
// prefix - the plain "global sort of groups by frequency per byte", for comparison: a large
// predictor then makes a layer's first unit look poor and hot groups of unopened layers wait.
GroupPlacement GreedyPlacement(const PlacementProblem& problem,
                               const std::vector<LayerGroups>& groups, bool naive = false);

// GPU bytes of a group-level placement (the same accounting as cost_model.h's check).
uint64_t PlacementBytes(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                        const GroupPlacement& placement);

// Coverage objective: with the budget the neurons leave, places dense parts that are not yet on
// the GPU - each layer's attention + KV cache, the classifier - most bytes read per token per
// byte of VRAM first, while they fit. Neurons are untouched, so the coverage is unchanged.
void FillLeftoverWithDense(const PlacementProblem& problem, const std::vector<LayerGroups>& groups,
                           GroupPlacement& placement);

}  // namespace pinfer
