#include "format/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/half.h"
#include "format/strings.h"

namespace pinfer {

void QuantizeRowQ8_0(const float* x, BlockQ8_0* out, size_t n) {
  for (size_t b = 0; b < n / kQuantBlockElements; ++b) {
    const float* block = x + b * kQuantBlockElements;
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlockElements; ++j) amax = std::max(amax, std::fabs(block[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = F32ToF16(d);
    for (int j = 0; j < kQuantBlockElements; ++j) {
      out[b].qs[j] = static_cast<int8_t>(std::roundf(block[j] * id));
    }
  }
}

namespace {

// The value of largest magnitude in a block, with its sign (the first one on ties, as ggml).
float SignedMaxMagnitude(const float* block) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < kQuantBlockElements; ++j) {
    if (std::fabs(block[j]) > amax) {
      amax = std::fabs(block[j]);
      max = block[j];
    }
  }
  return max;
}

}  // namespace

void QuantizeRowQ4_0(const float* x, BlockQ4_0* out, size_t n) {
  constexpr int kHalf = kQuantBlockElements / 2;
  for (size_t b = 0; b < n / kQuantBlockElements; ++b) {
    const float* block = x + b * kQuantBlockElements;
    // The signed value of largest magnitude maps to -8, so the full [-8, 7] range is used.
    const float max = SignedMaxMagnitude(block);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = F32ToF16(d);
    for (int j = 0; j < kHalf; ++j) {
      // Same truncation through int8 as ggml, so that the blocks are bit-identical.
      const int low = std::min(15, static_cast<int>(static_cast<int8_t>(block[j] * id + 8.5f)));
      const int high =
          std::min(15, static_cast<int>(static_cast<int8_t>(block[j + kHalf] * id + 8.5f)));
      out[b].qs[j] = static_cast<uint8_t>(low | (high << 4));
    }
  }
}

void DequantizeRowQ8_0(const BlockQ8_0* blocks, float* out, size_t n) {
  for (size_t b = 0; b < n / kQuantBlockElements; ++b) {
    const float d = F16ToF32(blocks[b].d);
    for (int j = 0; j < kQuantBlockElements; ++j) {
      out[b * kQuantBlockElements + j] = blocks[b].qs[j] * d;
    }
  }
}

void DequantizeRowQ4_0(const BlockQ4_0* blocks, float* out, size_t n) {
  constexpr int kHalf = kQuantBlockElements / 2;
  for (size_t b = 0; b < n / kQuantBlockElements; ++b) {
    const float d = F16ToF32(blocks[b].d);
    float* y = out + b * kQuantBlockElements;
    for (int j = 0; j < kHalf; ++j) {
      y[j] = (static_cast<int>(blocks[b].qs[j] & 0x0F) - 8) * d;
      y[j + kHalf] = (static_cast<int>(blocks[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void QuantizeRowQ4_0MinError(const float* x, BlockQ4_0* out, size_t n) {
  constexpr int kHalf = kQuantBlockElements / 2;
  for (size_t b = 0; b < n / kQuantBlockElements; ++b) {
    const float* block = x + b * kQuantBlockElements;
    const float max = SignedMaxMagnitude(block);
    int best_q[kQuantBlockElements] = {};
    uint16_t best_d = F32ToF16(0.0f);
    if (max != 0.0f) {
      // Candidate inverse scales map the extreme value to -8 + k/8 (k = 0 is ggml's choice, larger
      // k clips it); for each rounding, the least-squares scale is refit and rounded to f16, and
      // the candidate with the smallest error in the stored precision wins.
      double best_err = std::numeric_limits<double>::infinity();
      for (int k = 0; k <= 24; ++k) {
        const float iscale = (-8.0f + k / 8.0f) / max;
        int q[kQuantBlockElements];
        double sum_xq = 0.0, sum_qq = 0.0;
        for (int j = 0; j < kQuantBlockElements; ++j) {
          q[j] = std::clamp(static_cast<int>(std::lround(block[j] * iscale)), -8, 7);
          sum_xq += static_cast<double>(block[j]) * q[j];
          sum_qq += static_cast<double>(q[j]) * q[j];
        }
        if (sum_qq == 0.0) continue;
        const uint16_t d16 = F32ToF16(static_cast<float>(sum_xq / sum_qq));
        const double d = F16ToF32(d16);
        double err = 0.0;
        for (int j = 0; j < kQuantBlockElements; ++j) {
          const double e = block[j] - d * q[j];
          err += e * e;
        }
        if (err < best_err) {
          best_err = err;
          best_d = d16;
          std::copy(q, q + kQuantBlockElements, best_q);
        }
      }
    }
    out[b].d = best_d;
    for (int j = 0; j < kHalf; ++j) {
      out[b].qs[j] = static_cast<uint8_t>((best_q[j] + 8) | ((best_q[j + kHalf] + 8) << 4));
    }
  }
}

namespace {

// One row; `to_x16` picks the direction. Only full groups move; the tail is copied.
void ReorderQ4x16Row(const uint8_t* src, uint8_t* dst, size_t blocks, bool to_x16) {
  const size_t full = blocks / kQ4x16GroupBlocks * kQ4x16GroupBlocks;
  for (size_t b = 0; b < full; ++b) {
    const size_t plain = b * sizeof(BlockQ4_0);
    const uint8_t* from = to_x16 ? src + plain : src + Q4x16ScaleOffset(b, blocks);
    uint8_t* to = to_x16 ? dst + Q4x16ScaleOffset(b, blocks) : dst + plain;
    std::memcpy(to, from, 2);
    for (size_t i = 0; i < kQuantBlockElements / 2; i += 4) {
      const size_t x16 = Q4x16NibbleOffset(b, i, blocks);
      std::memcpy(to_x16 ? dst + x16 : dst + plain + 2 + i,
                  to_x16 ? src + plain + 2 + i : src + x16, 4);
    }
  }
  std::memcpy(dst + full * sizeof(BlockQ4_0), src + full * sizeof(BlockQ4_0),
              (blocks - full) * sizeof(BlockQ4_0));
}

void ReorderQ4x16(const void* src, void* dst, size_t rows, size_t cols, bool to_x16) {
  const size_t blocks = cols / kQuantBlockElements;
  const size_t row_bytes = blocks * sizeof(BlockQ4_0);
  for (size_t r = 0; r < rows; ++r) {
    ReorderQ4x16Row(static_cast<const uint8_t*>(src) + r * row_bytes,
                    static_cast<uint8_t*>(dst) + r * row_bytes, blocks, to_x16);
  }
}

}  // namespace

void ConvertQ4_0ToQ4_0x16(const void* src, void* dst, size_t rows, size_t cols) {
  ReorderQ4x16(src, dst, rows, cols, true);
}

void ConvertQ4_0x16ToQ4_0(const void* src, void* dst, size_t rows, size_t cols) {
  ReorderQ4x16(src, dst, rows, cols, false);
}

absl::Status EncodeRow(const float* x, size_t n, DType dtype, void* out, Q4Scales q4_scales) {
  if (GetDTypeInfo(dtype).quantized && n % kQuantBlockElements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot quantize a row of ", n, " values to ",
                                                   Sv(DTypeName(dtype)), ": not a multiple of ",
                                                   kQuantBlockElements));
  }
  switch (dtype) {
    case DType::kF32:
      std::copy(x, x + n, static_cast<float*>(out));
      return absl::OkStatus();
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(out)[i] = F32ToF16(x[i]);
      return absl::OkStatus();
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(out)[i] = F32ToBF16(x[i]);
      return absl::OkStatus();
    case DType::kQ8_0:
      QuantizeRowQ8_0(x, static_cast<BlockQ8_0*>(out), n);
      return absl::OkStatus();
    case DType::kQ4_0:
      if (q4_scales == Q4Scales::kMinError) {
        QuantizeRowQ4_0MinError(x, static_cast<BlockQ4_0*>(out), n);
      } else {
        QuantizeRowQ4_0(x, static_cast<BlockQ4_0*>(out), n);
      }
      return absl::OkStatus();
    case DType::kQ4_0x16: {
      std::vector<BlockQ4_0> plain(n / kQuantBlockElements);
      if (absl::Status s = EncodeRow(x, n, DType::kQ4_0, plain.data(), q4_scales); !s.ok())
        return s;
      ConvertQ4_0ToQ4_0x16(plain.data(), out, 1, n);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cannot encode floats as ", Sv(DTypeName(dtype))));
  }
}

absl::StatusOr<std::vector<uint8_t>> EncodeMatrix(std::span<const float> values, int64_t rows,
                                                  int64_t cols, DType dtype) {
  if (rows < 0 || cols < 0 || values.size() != static_cast<size_t>(rows * cols)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot encode ", values.size(),
                                                   " values as a [", rows, ", ", cols, "] matrix"));
  }
  absl::StatusOr<uint64_t> row_bytes = RowBytes(dtype, static_cast<uint64_t>(cols));
  if (!row_bytes.ok()) return row_bytes.status();
  std::vector<uint8_t> out(static_cast<size_t>(*row_bytes * static_cast<uint64_t>(rows)));
  for (int64_t r = 0; r < rows; ++r) {
    if (absl::Status s = EncodeRow(values.data() + r * cols, static_cast<size_t>(cols), dtype,
                                   out.data() + static_cast<uint64_t>(r) * *row_bytes);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

absl::Status DecodeRow(const void* in, size_t n, DType dtype, float* out) {
  if (GetDTypeInfo(dtype).quantized && n % kQuantBlockElements != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot decode a row of ", n, " values of ", Sv(DTypeName(dtype))));
  }
  switch (dtype) {
    case DType::kF32:
      std::copy(static_cast<const float*>(in), static_cast<const float*>(in) + n, out);
      return absl::OkStatus();
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = F16ToF32(static_cast<const uint16_t*>(in)[i]);
      return absl::OkStatus();
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = BF16ToF32(static_cast<const uint16_t*>(in)[i]);
      return absl::OkStatus();
    case DType::kQ8_0:
      DequantizeRowQ8_0(static_cast<const BlockQ8_0*>(in), out, n);
      return absl::OkStatus();
    case DType::kQ4_0:
      DequantizeRowQ4_0(static_cast<const BlockQ4_0*>(in), out, n);
      return absl::OkStatus();
    case DType::kQ4_0x16: {
      std::vector<BlockQ4_0> plain(n / kQuantBlockElements);
      ConvertQ4_0x16ToQ4_0(in, plain.data(), 1, n);
      DequantizeRowQ4_0(plain.data(), out, n);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cannot decode ", Sv(DTypeName(dtype)), " as floats"));
  }
}

}  // namespace pinfer
