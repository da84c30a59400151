#include "runtime/exec/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/cpu/kernels.h"

namespace pinfer {

absl::StatusOr<DType> ParseKvCacheType(std::string_view name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "q8_0") return DType::kQ8_0;
  return absl::InvalidArgumentError(absl::StrCat("the KV cache type must be ", kKvCacheTypeChoices,
                                                 ", not '", std::string(name), "'"));
}

uint64_t KvCache::RowBytes(const ModelConfig& c, DType type) {
  return pinfer::RowBytes(type, static_cast<uint64_t>(c.kv_dim())).value_or(0);
}

uint64_t KvCache::Bytes(const ModelConfig& c, int64_t context, DType type) {
  return 2 * static_cast<uint64_t>(c.n_layers) * static_cast<uint64_t>(context) * RowBytes(c, type);
}

absl::StatusOr<KvCache> KvCache::Create(const ModelConfig& c, int64_t context, DType type) {
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kQ8_0) {
    return absl::InvalidArgumentError(absl::StrCat("a KV cache of ", std::string(DTypeName(type)),
                                                   ": the types are ", kKvCacheTypeChoices));
  }
  if (type == DType::kQ8_0 && c.kv_dim() % kQuantBlockElements != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a q8_0 KV cache needs rows of a multiple of 32 elements; this model's KV row (",
        c.n_kv_heads, " KV heads x ", c.head_dim, ") has ", c.kv_dim(), " (use f16 or f32)"));
  }
  if (c.sliding_window > 0 && context > c.sliding_window) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a context of ", context, " positions exceeds this model's sliding attention window of ",
        c.sliding_window, " (sliding-window attention is not implemented): use -c ",
        c.sliding_window, " or less"));
  }
  KvCache cache;
  cache.type_ = type;
  cache.n_layers_ = c.n_layers;
  cache.context_ = context;
  cache.n_heads_ = c.n_heads;
  cache.n_kv_heads_ = c.n_kv_heads;
  cache.head_dim_ = c.head_dim;
  cache.rope_ = c.Rope();
  cache.row_bytes_ = static_cast<size_t>(RowBytes(c, type));
  const size_t half = static_cast<size_t>(Bytes(c, context, type) / 2);
  try {
    cache.keys_ = ZeroPages<uint8_t>(half);
    cache.values_ = ZeroPages<uint8_t>(half);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("not enough memory for a context of ", context,
                                                     " tokens (", std::string(DTypeName(type)),
                                                     " KV cache of ", FormatBytes(2 * half), ")"));
  }
  return cache;
}

uint8_t* KvCache::Row(ZeroPages<uint8_t>& cache, int64_t layer, int64_t pos) const {
  return cache.data() + static_cast<size_t>(layer * context_ + pos) * row_bytes_;
}

const uint8_t* KvCache::Row(const ZeroPages<uint8_t>& cache, int64_t layer, int64_t pos) const {
  return cache.data() + static_cast<size_t>(layer * context_ + pos) * row_bytes_;
}

void KvCache::Write(int64_t layer, int64_t pos0, int64_t n, const float* keys,
                    const float* values) {
  const int64_t kv_dim = n_kv_heads_ * head_dim_;
  cpu::EncodeRows(type_, keys, n, kv_dim, Row(keys_, layer, pos0));
  cpu::EncodeRows(type_, values, n, kv_dim, Row(values_, layer, pos0));
}

uint64_t KvCache::Attend(int64_t layer, const float* q, int64_t pos0, int64_t n, float* out) const {
  const cpu::AttentionShape shape{n_heads_, n_kv_heads_, head_dim_, n_kv_heads_ * head_dim_};
  cpu::Attention(shape, type_, q, Row(keys_, layer, 0), Row(values_, layer, 0), pos0, n, out);
  return 2 * static_cast<uint64_t>(pos0 + n) * row_bytes_;
}

absl::Status KvCache::Shift(int64_t n_past, int64_t keep, int64_t discard) {
  if (keep < 0 || discard < 1 || keep + discard > n_past || n_past > context_) {
    return absl::InvalidArgumentError(absl::StrCat("cannot drop ", discard, " positions after ",
                                                   keep, " of a sequence of ", n_past));
  }
  const int64_t kv_dim = n_kv_heads_ * head_dim_;
  const int64_t moved = n_past - keep - discard;
  const size_t bytes = static_cast<size_t>(moved) * row_bytes_;
  // f16 and q8_0 keys go through f32 a run of rows at a time (about 1 MiB of floats).
  const int64_t run = std::max<int64_t>(1, (int64_t{1} << 18) / kv_dim);
  std::vector<float> decoded;
  if (type_ != DType::kF32) decoded.resize(static_cast<size_t>(std::min(run, moved) * kv_dim));
  for (int64_t l = 0; l < n_layers_; ++l) {
    std::memmove(Row(keys_, l, keep), Row(keys_, l, keep + discard), bytes);
    std::memmove(Row(values_, l, keep), Row(values_, l, keep + discard), bytes);
    uint8_t* keys = Row(keys_, l, keep);
    if (type_ == DType::kF32) {
      cpu::RopeShift(reinterpret_cast<float*>(keys), moved, kv_dim, n_kv_heads_, head_dim_,
                     -discard, rope_);
      continue;
    }
    const cpu::MatrixView rows = cpu::MakeMatrixView(type_, moved, kv_dim, keys);
    for (int64_t r = 0; r < moved; r += run) {
      const int64_t count = std::min(run, moved - r);
      cpu::DecodeRows(rows, r, count, decoded.data());
      cpu::RopeShift(decoded.data(), count, kv_dim, n_kv_heads_, head_dim_, -discard, rope_);
      cpu::EncodeRows(type_, decoded.data(), count, kv_dim,
                      keys + static_cast<size_t>(r) * row_bytes_);
    }
  }
  return absl::OkStatus();
}

void KvCache::DecodeKeys(int64_t layer, int64_t pos, int64_t count, float* out) const {
  const int64_t kv_dim = n_kv_heads_ * head_dim_;
  cpu::DecodeRows(cpu::MakeMatrixView(type_, context_, kv_dim, Row(keys_, layer, 0)), pos, count,
                  out);
}

void KvCache::DecodeValues(int64_t layer, int64_t pos, int64_t count, float* out) const {
  const int64_t kv_dim = n_kv_heads_ * head_dim_;
  cpu::DecodeRows(cpu::MakeMatrixView(type_, context_, kv_dim, Row(values_, layer, 0)), pos, count,
                  out);
}

}  // namespace pinfer
