#include "tests/webui/ffn_server.h"

#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "tests/runtime/test_models.h"

namespace pinfer::test {

FfnSetup ExactSparseSetup() {
  FfnSetup setup;
  setup.exact = true;
  return setup;
}

FfnSetup HybridSetup(const Model& model) {
  std::vector<int32_t> hot(static_cast<size_t>(model.config().n_ff / 2));
  std::iota(hot.begin(), hot.end(), 0);
  FfnSetup setup;
  setup.gpu_neurons.assign(static_cast<size_t>(model.config().n_layers), hot);
  return setup;
}

FfnServer StartReluServer(const std::function<FfnSetup(const Model&)>& make_setup,
                          ServerOptions options) {
  FfnServer s;
  absl::StatusOr<std::unique_ptr<Model>> model =
      Model::Load(ConvertedModel(BundledModel::kReluLlama260K));
  if (!model.ok()) {
    ADD_FAILURE() << model.status();
    return s;
  }
  s.model = *std::move(model);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*s.model->vocabulary());
  if (!tokenizer.ok()) {
    ADD_FAILURE() << tokenizer.status();
    return s;
  }
  s.tokenizer = std::make_unique<Tokenizer>(*std::move(tokenizer));
  s.executor = std::make_unique<Executor>(*s.model);
  absl::StatusOr<std::vector<std::unique_ptr<LayerFfn>>> layers =
      BuildFfnLayers(*s.model, make_setup(*s.model));
  if (!layers.ok()) {
    ADD_FAILURE() << layers.status();
    return s;
  }
  if (absl::Status status = s.executor->SetFfnLayers(*std::move(layers)); !status.ok()) {
    ADD_FAILURE() << status;
    return s;
  }
  options.host = "127.0.0.1";
  options.port = 0;
  if (!options.log) options.log_requests = false;
  SessionOptions session;
  session.context_length = 64;
  absl::StatusOr<std::unique_ptr<PiServer>> server =
      PiServer::Create(*s.executor, *s.tokenizer, session, options);
  if (!server.ok()) {
    ADD_FAILURE() << server.status();
    return s;
  }
  if (absl::Status status = (*server)->Start(); !status.ok()) {
    ADD_FAILURE() << status;
    return s;
  }
  s.server = *std::move(server);
  return s;
}

}  // namespace pinfer::test
