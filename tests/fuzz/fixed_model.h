// The model the artifact fuzz targets check profiles, predictors and plans against (their ReadFor
// paths): tests/fuzz/data/artifact_model.pi, loaded once per process. The seed artifacts in
// corpus/{profile,predictor,plan} were made for it (make_fuzz_corpus writes them together), so
// that mutated artifacts get past the model digest check.
#pragma once

#include <string>

#include "runtime/model/model.h"

namespace pinfer::fuzz {

// Aborts when the model does not load: every input would otherwise be rejected, and the run
// would pass while testing nothing.
const Model& FixedModel();
const std::string& FixedModelPath();

}  // namespace pinfer::fuzz
