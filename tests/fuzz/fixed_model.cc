#include "tests/fuzz/fixed_model.h"

#include <cstdio>
#include <cstdlib>

#include "runtime/cpu/kernels.h"

namespace pinfer::fuzz {

const std::string& FixedModelPath() {
  static const std::string path = PINFER_FUZZ_MODEL;
  return path;
}

const Model& FixedModel() {
  static const Model* model = [] {
    cpu::SetThreads(1);  // one input at a time; threads only add noise and start-up cost
    absl::StatusOr<std::unique_ptr<Model>> loaded = Model::Load(FixedModelPath());
    if (!loaded.ok()) {
      std::fprintf(stderr, "fuzz: cannot load the fixed model: %s\n",
                   std::string(loaded.status().message()).c_str());
      std::abort();
    }
    return loaded->release();
  }();
  return *model;
}

}  // namespace pinfer::fuzz
