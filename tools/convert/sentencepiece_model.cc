#include "tools/convert/sentencepiece_model.h"

#include <sentencepiece_processor.h>

namespace pinfer {

std::string LoadSentencePieceModel(const std::string& serialized, SentencePieceVocab* out) {
  sentencepiece::SentencePieceProcessor processor;
  const sentencepiece::util::Status status = processor.LoadFromSerializedProto(serialized);
  if (!status.ok()) return "not a SentencePiece model (" + status.ToString() + ")";
  const int n = processor.GetPieceSize();
  if (n <= 0) return "the SentencePiece model has no pieces";
  out->pieces.clear();
  out->scores.clear();
  out->types.clear();
  for (int id = 0; id < n; ++id) {
    out->pieces.push_back(processor.IdToPiece(id));
    out->scores.push_back(processor.GetScore(id));
    int32_t type = 1;
    if (processor.IsUnknown(id)) {
      type = 2;
    } else if (processor.IsControl(id)) {
      type = 3;
    } else if (processor.IsUnused(id)) {
      type = 5;
    } else if (processor.IsByte(id)) {
      type = 6;
    }
    out->types.push_back(type);
  }
  out->unk_id = processor.unk_id();
  out->bos_id = processor.bos_id();
  out->eos_id = processor.eos_id();
  out->pad_id = processor.pad_id();
  // The normalizer spec is not exposed by the library, so ask it: with add_dummy_prefix the
  // segmentation of "a" starts with the whitespace symbol U+2581.
  std::vector<std::string> probe;
  if (!processor.Encode("a", &probe).ok()) return "the SentencePiece model cannot encode";
  out->add_dummy_prefix = !probe.empty() && probe[0].rfind("\xe2\x96\x81", 0) == 0;
  return "";
}

}  // namespace pinfer
