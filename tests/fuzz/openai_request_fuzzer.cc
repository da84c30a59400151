// libFuzzer target: pi-server's request path short of generation, as http_server.cc runs it: the
// body parsed as JSON, ParseCompletionRequest for both endpoints, PlanGeneration over a fixed
// tokenizer with both chat formats, and the response bodies built from what the plan holds. An
// accepted request must give a plan the scheduler can run: a non-empty prompt of vocabulary ids,
// 1 <= max_tokens <= the server's limit, prompt + max_tokens within the context, and sampling
// parameters that the sampler accepts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "absl/strings/str_format.h"
#include "runtime/app/server/generation_plan.h"
#include "runtime/app/server/openai_protocol.h"
#include "tests/fuzz/fuzz_checks.h"

namespace pinfer::fuzz {
namespace {

// A small SentencePiece-style vocabulary: the special three, ChatML's markers as control pieces,
// all 256 byte pieces, letters and a few merges, so that every encoder path is taken.
Vocabulary MakeVocabulary() {
  Vocabulary v;
  auto add = [&v](std::string piece, float score, TokenType type) {
    v.pieces.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  add("<|im_start|>", 0, TokenType::kControl);
  add("<|im_end|>", 0, TokenType::kControl);
  for (int b = 0; b < 256; ++b) add(absl::StrFormat("<0x%02X>", b), 0, TokenType::kByte);
  const std::string space = "\xe2\x96\x81";
  add(space, -1, TokenType::kNormal);
  for (char c = 'a'; c <= 'z'; ++c) add(std::string(1, c), -2, TokenType::kNormal);
  float score = -3;
  for (const char* merge : {"he", "th", "the", "in", "er", "user", "assistant", "[INST]"}) {
    add(merge, score, TokenType::kNormal);
    add(space + merge, score, TokenType::kNormal);
    score -= 1;
  }
  v.chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}";
  return v;
}

const Tokenizer& FixedTokenizer() {
  static const Tokenizer* tokenizer = new Tokenizer(*Tokenizer::Create(MakeVocabulary()));
  return *tokenizer;
}

void CheckPlan(const GenerationRequest& plan, const Tokenizer& tokenizer,
               const GenerationLimits& limits) {
  Require(!plan.prompt.empty(), "an accepted request has an empty prompt");
  for (int32_t t : plan.prompt)
    Require(t >= 0 && t < tokenizer.size(), "a prompt id is outside the vocabulary");
  Require(plan.max_tokens >= 1 && plan.max_tokens <= limits.max_tokens, "max_tokens out of range");
  Require(static_cast<int64_t>(plan.prompt.size()) + plan.max_tokens <= limits.context_length,
          "the prompt and max_tokens do not fit the context");
  Require(plan.sampling.Validate().ok(), "the sampler refuses an accepted request's parameters");
  for (const std::string& s : plan.stop) Require(!s.empty(), "an empty stop sequence");
}

// What the handler sends back, built from text the plan's tokens decode to (a model may emit any
// bytes, invalid UTF-8 included).
void BuildResponses(Endpoint endpoint, const CompletionRequest& request,
                    const GenerationRequest& plan, const Tokenizer& tokenizer) {
  const ResponseHeader header{"cmpl-fuzz", 1, request.model};
  CompletionOutcome outcome;
  outcome.text = tokenizer.Decode(plan.prompt, false, true) + "\xff\xc3";
  outcome.prompt_tokens = static_cast<int64_t>(plan.prompt.size());
  (void)DumpJson(CompletionResponse(endpoint, header, outcome));
  (void)SseEvent(StreamChunk(endpoint, header, outcome.text, std::nullopt, true));
  (void)SseEvent(StreamChunk(endpoint, header, "", FinishReason::kLength));
  (void)SseEvent(StreamUsageChunk(endpoint, header, 1, 2));
}

}  // namespace
}  // namespace pinfer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const std::string body(reinterpret_cast<const char*>(data), size);
  const nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return 0;
  const Tokenizer& tokenizer = fuzz::FixedTokenizer();
  const GenerationLimits limits{"tiny", 256, 64};
  for (Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    absl::StatusOr<CompletionRequest> request = ParseCompletionRequest(parsed, endpoint);
    if (!request.ok()) {
      (void)InvalidRequest(std::string(request.status().message())).Body();
      fuzz::Rejected(request.status());
      continue;
    }
    for (ChatFormat format : {ChatFormat::kChatMl, ChatFormat::kLlama2}) {
      std::variant<GenerationRequest, ApiError> plan =
          PlanGeneration(*request, tokenizer, ChatTemplate(format), limits);
      if (const ApiError* error = std::get_if<ApiError>(&plan)) {
        (void)error->Body();
        fuzz::Rejected(absl::InvalidArgumentError(error->message));
        continue;
      }
      const GenerationRequest& g = std::get<GenerationRequest>(plan);
      fuzz::CheckPlan(g, tokenizer, limits);
      fuzz::BuildResponses(endpoint, *request, g, tokenizer);
      if (endpoint == Endpoint::kCompletions) break;  // chat formats apply to chat only
    }
  }
  return 0;
}
