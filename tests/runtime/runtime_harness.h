// A loaded model with everything needed to run it in a test: tokenizer, executor, one session.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/generator.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "runtime/text/sampler.h"
#include "runtime/text/tokenizer.h"

namespace pinfer::test {

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Session> session;
};

// Fails the test (and returns an empty Loaded) when anything does not load. The session's KV cache
// stores `cache_type` (the runtime's default, f16, unless a test asks for another).
inline Loaded LoadForTest(const std::string& path, int64_t context = 0, int64_t batch_size = 256,
                          DType cache_type = kDefaultKvCacheType) {
  Loaded l;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return {};
  l.model = *std::move(model);
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*l.model->vocabulary());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  if (!tokenizer.ok()) return {};
  l.tokenizer = std::make_unique<Tokenizer>(*std::move(tokenizer));
  ExecutorOptions options;
  options.batch_size = batch_size;
  l.executor = std::make_unique<Executor>(*l.model, options);
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(
      *l.executor, SessionOptions{.context_length = context, .cache_type = cache_type});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return {};
  l.session = *std::move(session);
  return l;
}

// Greedy text after `prompt` (BOS and the SentencePiece leading space added, as llama.cpp does).
inline std::string GreedyContinuation(Loaded& l, const std::string& prompt, int64_t tokens) {
  l.session->Reset();
  SamplerParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  GenerationOptions options;
  options.max_tokens = tokens;
  std::string text;
  absl::StatusOr<GenerationResult> result = Generate(
      *l.session, sampler, *l.tokenizer, l.tokenizer->Encode(prompt), options, [&](int32_t token) {
        text += l.tokenizer->TokenToPiece(token);
        return true;
      });
  EXPECT_TRUE(result.ok()) << result.status();
  return text;
}

}  // namespace pinfer::test
