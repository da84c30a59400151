// One sequence's KV cache: the keys and values of every layer for positions [0, context), stored
// as f32, f16 (the default, as llama.cpp's) or q8_0. Everything that knows how the cache stores
// its rows is here: writing a batch of new rows from f32, the attention over them, the context
// shift, the bytes it takes and reads. The forward pass (executor.h) computes keys and values in
// f32 and hands them over.
//
// Layout: keys and values are each [n_layers, context, kv_dim] elements of the cache type, one
// row of kv_dim elements (RowBytes(type, kv_dim) bytes) per position; q8_0 rows are blocks of 32
// (an f16 scale and 32 int8, format/quant.h), so kv_dim must be a multiple of 32. Pages are
// touched only as positions are reached (ZeroPages).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/dtype.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/memory_budget.h"
#include "runtime/model/model_config.h"

namespace pinfer {

// The cache types, by name: "f32", "f16" or "q8_0"; anything else is InvalidArgument naming the
// choices.
absl::StatusOr<DType> ParseKvCacheType(std::string_view name);
inline constexpr DType kDefaultKvCacheType = DType::kF16;
inline constexpr char kKvCacheTypeChoices[] = "f32, f16 or q8_0";

// The host's KV store (backend.h): a backend on the CPU attends over it directly.
class KvCache : public KvStore {
 public:
  KvCache() = default;
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;
  // A cache of `context` positions for `config`'s layers. InvalidArgument when the type is not a
  // cache type or does not fit the model (q8_0 and a kv_dim that is not a multiple of 32);
  // ResourceExhausted (naming the bytes) when the mapping fails.
  static absl::StatusOr<KvCache> Create(const ModelConfig& config, int64_t context, DType type);
  // The bytes Create maps (keys and values), once every position is used.
  static uint64_t Bytes(const ModelConfig& config, int64_t context, DType type);
  // Bytes of one position's keys (or values) of one layer.
  static uint64_t RowBytes(const ModelConfig& config, DType type);

  DType type() const { return type_; }
  int64_t context() const override { return context_; }
  uint64_t Bytes() const override { return keys_.size() + values_.size(); }
  int64_t slots() const override { return n_layers_; }
  KvCache* host_cache() override { return this; }
  // Every layer's keys (or values) as stored: [layers, context] rows (a device cache of the same
  // layout is copied through these for its context shift).
  std::span<uint8_t> key_bytes() { return {keys_.data(), keys_.size()}; }
  std::span<uint8_t> value_bytes() { return {values_.data(), values_.size()}; }

  // Encodes the keys and values of positions [pos0, pos0 + n) of `layer` ([n, kv_dim] f32 each,
  // the keys already rotated) into the cache.
  void Write(int64_t layer, int64_t pos0, int64_t n, const float* keys, const float* values);
  // Causal attention of `n` queries ([n, n_heads, head_dim]) at positions [pos0, pos0 + n) over
  // the cache rows [0, pos0 + n) of `layer` (written first): out is [n, n_heads, head_dim].
  // Returns the bytes of cache it read (keys and values of every position, once per pass).
  uint64_t Attend(int64_t layer, const float* q, int64_t pos0, int64_t n, float* out) const;
  // The context shift of a sequence holding positions [0, n_past) (Executor::ShiftCache): drops
  // positions [keep, keep + discard) of every layer, moves the later rows down and re-rotates
  // their keys by -discard positions (RoPE); f16 and q8_0 keys are decoded, rotated in f32 and
  // encoded again. InvalidArgument, changing nothing, unless 0 <= keep, 1 <= discard and
  // keep + discard <= n_past <= context.
  absl::Status Shift(int64_t n_past, int64_t keep, int64_t discard);

  // Positions [pos, pos + count) of `layer` decoded to f32 ([count, kv_dim]): for tests.
  void DecodeKeys(int64_t layer, int64_t pos, int64_t count, float* out) const;
  void DecodeValues(int64_t layer, int64_t pos, int64_t count, float* out) const;

 private:
  uint8_t* Row(ZeroPages<uint8_t>& cache, int64_t layer, int64_t pos) const;
  const uint8_t* Row(const ZeroPages<uint8_t>& cache, int64_t layer, int64_t pos) const;

  DType type_ = kDefaultKvCacheType;
  int64_t n_layers_ = 0;
  int64_t context_ = 0;
  int64_t n_heads_ = 0;
  int64_t n_kv_heads_ = 0;
  int64_t head_dim_ = 0;
  RopeFrequencies rope_;  // the model's (ModelConfig::Rope), to re-rotate moved keys
  size_t row_bytes_ = 0;
  ZeroPages<uint8_t> keys_;    // [n_layers, context] rows of row_bytes_
  ZeroPages<uint8_t> values_;  // [n_layers, context] rows of row_bytes_
};

}  // namespace pinfer
