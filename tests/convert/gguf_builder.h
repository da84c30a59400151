// Builds GGUF files byte by byte for tests: valid ones in the real layout (llama.cpp's key names,
// ne order, alignment) and, by editing the result, every kind of damage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/byte_io.h"

namespace pinfer::testing {

class GgufBuilder {
 public:
  void set_magic(std::string magic) { magic_ = std::move(magic); }
  void set_version(uint32_t version) { version_ = version; }

  void AddUint32(const std::string& key, uint32_t v) { Key(key, 4).Put(v); }
  void AddInt32(const std::string& key, int32_t v) { Key(key, 5).Put(v); }
  void AddFloat32(const std::string& key, float v) { Key(key, 6).Put(v); }
  void AddBool(const std::string& key, bool v) { Key(key, 7).Put<uint8_t>(v ? 1 : 0); }
  void AddString(const std::string& key, const std::string& v) { Key(key, 8).PutLongString(v); }
  void AddStringArray(const std::string& key, const std::vector<std::string>& v);
  void AddFloat32Array(const std::string& key, const std::vector<float>& v);
  void AddInt32Array(const std::string& key, const std::vector<int32_t>& v);
  // Raw: key, type id, then the caller's bytes (for malformed values).
  void AddRaw(const std::string& key, uint32_t type, const std::vector<uint8_t>& value);

  // ne in GGUF order (ne[0] contiguous); data exactly as the file stores it.
  void AddTensor(const std::string& name, std::vector<uint64_t> ne, uint32_t ggml_type,
                 std::vector<uint8_t> data);

  std::vector<uint8_t> Build(uint64_t alignment = 32) const;
  // Offset of the first tensor's data in the last Build() result.
  size_t kv_count() const { return kv_count_; }

 private:
  ByteWriter& Key(const std::string& key, uint32_t type);
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  std::string magic_ = "GGUF";
  uint32_t version_ = 3;
  ByteWriter kvs_;
  size_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

// The 8-token SentencePiece vocabulary of the tiny test GGUFs: <unk> <s> </s> a b c ▁a ▁b, with
// scores, types and bos 1 / eos 2 (further tokenizer keys are the caller's).
void AddTinyLlamaVocabulary(GgufBuilder& b);

}  // namespace pinfer::testing
