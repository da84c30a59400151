// pi-tokenize: print the token ids of a prompt under a model's vocabulary, in llama-tokenize's
// formats, so that pinfer's tokenizer can be compared with llama.cpp's on any file.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "format/file_access.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "runtime/text/tokenizer.h"
#include "tools/tokenize/model_vocabulary.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-tokenize";

int Main(int argc, char** argv) {
  CLI::App app{
      "Print the tokens of a prompt under a model's vocabulary: one line per token, "
      "'<id> -> '<piece>'' as llama-tokenize prints them, or with --ids the list [1, 2, 3].\n"
      "The model is anything pinfer reads: a model.pi, a GGUF (also a vocabulary-only one such "
      "as llama.cpp's models/ggml-vocab-*.gguf), a HuggingFace directory, a tokenizer.json or "
      "tokenizer.model, or a llama2.c checkpoint with --tokenizer. Special tokens written in the "
      "text (<|endoftext|>, <s>) are parsed, as llama-tokenize does, unless "
      "--no-parse-special; the text is taken as it is (no \\n escapes).\n\n"
      "Examples:\n"
      "  pi-tokenize -m stories260K.pi -p 'Once upon a time'\n"
      "  pi-tokenize -m ggml-vocab-gpt-2.gguf -f prompt.txt --ids",
      kProgram};
  std::string model_path, prompt, prompt_file, tokenizer_path;
  bool ids = false, no_bos = false, no_parse_special = false;
  app.add_option("-m,--model", model_path, "model or vocabulary file, or HuggingFace directory")
      ->required();
  auto* p = app.add_option("-p,--prompt", prompt, "the text to tokenize");
  auto* f = app.add_option("-f,--file", prompt_file, "read the text from this file");
  p->excludes(f);
  f->excludes(p);
  app.add_option("--tokenizer", tokenizer_path,
                 "llama2.c: the checkpoint's tokenizer.bin; HuggingFace: a tokenizer file to use");
  app.add_flag("--ids", ids, "print only the ids, as [1, 2, 3]");
  app.add_flag("--no-bos", no_bos, "never add a BOS token, even where the vocabulary adds one");
  app.add_flag("--no-parse-special", no_parse_special,
               "treat special tokens written in the text as plain text");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (p->count() == 0 && f->count() == 0) {
    return ReportError(kProgram, absl::InvalidArgumentError("give the text with -p or -f"));
  }
  if (f->count() > 0) {
    absl::StatusOr<std::string> text = ReadRegularFile(prompt_file);
    if (!text.ok()) return ReportError(kProgram, text.status());
    prompt = *std::move(text);
  }
  std::vector<std::string> notes;
  absl::StatusOr<Vocabulary> vocabulary = ReadModelVocabulary(model_path, tokenizer_path, notes);
  if (!vocabulary.ok()) return ReportError(kProgram, vocabulary.status());
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*vocabulary);
  if (!tokenizer.ok()) {
    return ReportError(kProgram, absl::InvalidArgumentError(
                                     absl::StrCat(model_path, ": ", tokenizer.status().message())));
  }
  const std::vector<int32_t> tokens =
      tokenizer->Encode(prompt, /*add_special=*/!no_bos, /*parse_special=*/!no_parse_special);
  if (ids) {
    std::printf("[%s]\n", absl::StrJoin(tokens, ", ").c_str());
    return 0;
  }
  for (int32_t token : tokens) {
    const std::string piece = tokenizer->TokenToPiece(token, /*special=*/true);
    std::printf("%6d -> '", token);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::printf("'\n");
  }
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
