// A PiServer over relu-llama-260k whose FFN is built from a given FfnSetup (dense, sparse with
// exact selection, hybrid with a CPU stand-in for the GPU part), for the tests of what /props and
// the page say about the FFN mode. The harness's StartServer runs stories260K, dense only.
#pragma once

#include <memory>

#include "runtime/app/server/http_server.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/ffn_builder.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"

namespace pinfer::test {

struct FfnServer {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<PiServer> server;  // null after a failure (reported)
};

// The setup with an exact gate-first CPU part (the "sparse" mode), and with the first half of
// every layer's neurons in a GPU part (the "hybrid" mode).
FfnSetup ExactSparseSetup();
FfnSetup HybridSetup(const Model& model);

// Started on 127.0.0.1 and a free port with request logs off, sessions of 64 positions.
// `make_setup` sees the loaded model.
FfnServer StartReluServer(const std::function<FfnSetup(const Model&)>& make_setup,
                          ServerOptions options = {});

}  // namespace pinfer::test
