#include "tests/convert/gguf_builder.h"

namespace pinfer::testing {

ByteWriter& GgufBuilder::Key(const std::string& key, uint32_t type) {
  ++kv_count_;
  kvs_.PutLongString(key);
  kvs_.Put(type);
  return kvs_;
}

void GgufBuilder::AddStringArray(const std::string& key, const std::vector<std::string>& v) {
  Key(key, 9).Put<uint32_t>(8);
  kvs_.Put<uint64_t>(v.size());
  for (const std::string& s : v) kvs_.PutLongString(s);
}

void GgufBuilder::AddFloat32Array(const std::string& key, const std::vector<float>& v) {
  Key(key, 9).Put<uint32_t>(6);
  kvs_.Put<uint64_t>(v.size());
  for (float f : v) kvs_.Put(f);
}

void GgufBuilder::AddInt32Array(const std::string& key, const std::vector<int32_t>& v) {
  Key(key, 9).Put<uint32_t>(5);
  kvs_.Put<uint64_t>(v.size());
  for (int32_t i : v) kvs_.Put(i);
}

void GgufBuilder::AddRaw(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
  Key(key, type).PutBytes(value.data(), value.size());
}

void GgufBuilder::AddTensor(const std::string& name, std::vector<uint64_t> ne, uint32_t ggml_type,
                            std::vector<uint8_t> data) {
  tensors_.push_back({name, std::move(ne), ggml_type, std::move(data)});
}

std::vector<uint8_t> GgufBuilder::Build(uint64_t alignment) const {
  ByteWriter w;
  w.PutBytes(magic_.data(), 4);
  w.Put(version_);
  w.Put<uint64_t>(tensors_.size());
  w.Put<uint64_t>(kv_count_);
  w.PutBytes(kvs_.bytes().data(), kvs_.size());
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    w.PutLongString(t.name);
    w.Put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) w.Put(d);
    w.Put(t.type);
    w.Put(offset);
    offsets.push_back(offset);
    offset = (offset + t.data.size() + alignment - 1) / alignment * alignment;
  }
  w.PadTo(alignment);
  for (const Tensor& t : tensors_) {
    w.PutBytes(t.data.data(), t.data.size());
    w.PadTo(alignment);
  }
  return w.bytes();
}

void AddTinyLlamaVocabulary(GgufBuilder& b) {
  b.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "c",
                                             "\xe2\x96\x81"
                                             "a",
                                             "\xe2\x96\x81"
                                             "b"});
  b.AddFloat32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3, -4, -5});
  b.AddInt32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1});
  b.AddUint32("tokenizer.ggml.bos_token_id", 1);
  b.AddUint32("tokenizer.ggml.eos_token_id", 2);
}

}  // namespace pinfer::testing
