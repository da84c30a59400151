#include "tests/convert/spm_helper.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace pinfer::testing {

std::string TrainLlamaStyleSentencePiece(const std::string& text_path,
                                         const std::string& model_prefix, int vocab_size,
                                         int sentences) {
  // The options of Llama's tokenizer.model (its trainer_spec), scaled down.
  const std::string args =
      "--input=" + text_path + " --model_prefix=" + model_prefix +
      " --vocab_size=" + std::to_string(vocab_size) +
      " --model_type=bpe --byte_fallback=true --split_digits=true --character_coverage=0.9999"
      " --normalization_rule_name=identity --remove_extra_whitespaces=false"
      " --add_dummy_prefix=true --allow_whitespace_only_pieces=true"
      " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --minloglevel=2"
      " --input_sentence_size=" +
      std::to_string(sentences) +
      " --shuffle_input_sentence=false"
      " --num_threads=1";
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(args);
  return status.ok() ? "" : status.ToString();
}

std::vector<SpmPiece> SentencePiecePieces(const std::string& model_path) {
  sentencepiece::SentencePieceProcessor processor;
  std::vector<SpmPiece> out;
  if (!processor.Load(model_path).ok()) return out;
  for (int i = 0; i < processor.GetPieceSize(); ++i) {
    out.push_back({processor.IdToPiece(i), processor.GetScore(i)});
  }
  return out;
}

std::vector<int> SentencePieceEncode(const std::string& model_path, const std::string& text) {
  sentencepiece::SentencePieceProcessor processor;
  std::vector<int> ids;
  if (!processor.Load(model_path).ok()) return ids;
  if (!processor.Encode(text, &ids).ok()) ids.clear();
  return ids;
}

}  // namespace pinfer::testing
