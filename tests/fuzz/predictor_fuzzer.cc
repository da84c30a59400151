// libFuzzer target: the predictor reader (PredictorWeights::Read and ReadFor against the fixed
// model), then one evaluation of every accepted layer with the CPU kernel, as the sparse FFN runs
// it: the weights are read through the views the reader built, so a view larger than its tensor
// faults. Inputs are .pi files with valid checksums (pi_custom_mutator.cc).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/cpu/predictor_kernel.h"
#include "runtime/model/predictor_weights.h"
#include "tests/fuzz/fixed_model.h"
#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"

namespace pinfer::fuzz {
namespace {

void Evaluate(const PredictorWeights& p) {
  Require(p.Validate().ok(), "Read returned a predictor that fails Validate()");
  std::vector<float> x(static_cast<size_t>(p.dim));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;
  cpu::PredictorScratch scratch;
  cpu::PredictedActive active;
  for (int64_t l = 0; l < p.n_layers(); ++l) {
    const cpu::PredictorView view = p.View(l);
    Require(view.dim() == p.dim && view.n_ff() == p.n_ff, "a layer view has another shape");
    std::vector<uint8_t> mask(static_cast<size_t>(cpu::PredictorMaskBytes(p.n_ff)));
    cpu::PredictActive(view, x.data(), 1, scratch, active, mask.data());
    for (int32_t id : active.Token(0))
      Require(id >= 0 && id < p.n_ff, "a predicted id is outside n_ff");
    (void)p.LayerBytes(l);
  }
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const Model& model = fuzz::FixedModel();
  const std::string path = fuzz::WriteScratchFile("model.predictor.pi", {data, size});
  absl::StatusOr<PredictorWeights> read = PredictorWeights::Read(path);
  if (read.ok()) fuzz::Evaluate(*read);
  absl::StatusOr<PredictorWeights> predictor = PredictorWeights::ReadFor(path, model);
  if (!predictor.ok()) return fuzz::Rejected(predictor.status());
  fuzz::Require(predictor->n_layers() == model.n_layers() && predictor->dim == model.config().dim &&
                    predictor->n_ff == model.config().n_ff,
                "ReadFor accepted a predictor of another shape");
  return 0;
}
