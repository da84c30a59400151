// The entry point of pi-prepare's SentencePiece module (see sentencepiece_loader.cc): the address
// of LoadSentencePieceModel, found by dlsym under a C name.
#include "tools/convert/sentencepiece_model.h"

extern "C" __attribute__((visibility("default"))) void* pinfer_load_sentencepiece_model() {
  return reinterpret_cast<void*>(&pinfer::LoadSentencePieceModel);
}
