// What pi-place does for a model once its flags are parsed: open the model and its profile (and
// predictor, when there is one beside it), check the outputs, build and solve the placement
// problem, and write the plan atomically. pi-place and pi-prepare both call it, so a plan made
// by either is the same file for the same settings.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "format/metadata.h"
#include "runtime/model/placement_plan.h"
#include "tools/solve_placement/model_problem.h"
#include "tools/solve_placement/solve_placement.h"

namespace pinfer {

struct PlaceModelOptions {
  std::string model_path;
  std::string profile_path;    // "": beside the model (model.profile.pi)
  std::string predictor_path;  // "": model.predictor.pi when it exists, else an estimate
  std::string output_path;     // "": beside the model (model.plan.pi)
  std::string hardware_file;   // where options.hardware came from ("" for a preset): not an output
  ModelPlacementOptions placement;
  SolveOptions solve;
  Metadata provenance;  // written into the plan (tool, arguments)
  std::string program = "pi-place";  // prefix of the lines on stderr
  bool progress = true;              // "<program>: solving ..." before the solve
};

struct PlacedModel {
  ModelProblem problem;
  PlacementResult result;
  PlacementPlan plan;
  std::string profile_path;    // as resolved
  std::string predictor_path;  // as resolved ("" when estimated)
  std::string output_path;     // where the plan was written
};

// Errors name the file or flag on one line: a profile or predictor of another model, an output
// over an input, a budget below the minimum working set ("<model>: ...").
absl::StatusOr<PlacedModel> PlaceModel(const PlaceModelOptions& options);

}  // namespace pinfer
