// Transposed products Y[t, c] += Σ_r A[t, r] · W[r, c] over the neuron-major FFN down matrix (and
// DecodeRows). Compiled once per Highway target and dispatched at run time.
//
// Rows whose activation is exactly zero are skipped (ReLU models leave most of them zero), so the
// work and the bytes read scale with the number of active neurons. The weights are decoded to f32
// (quantized rows block by block: int -> float, scale folded into the activation) and accumulated
// with FMAs; an integer path does not apply because the sum runs across rows, each with its own
// block scales.
//   - n <= 4 (decode, small batches): the active rows are taken eight at a time, each streamed
//     once, whole, for every token (a block is decoded once and serves them all), and each output
//     vector is loaded and stored once per eight rows; the rows of the next group are prefetched.
//   - n > 4 (prompt): a register tile of kTokenTile tokens x kTileVectors output vectors stays in
//     registers while the rows of a row block pass by; each decoded (and scaled) weight vector
//     serves kTokenTile FMAs. The row block's column slice stays in L1 across the token tiles.
#include <algorithm>
#include <cstring>

#include "format/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/accumulate_simd.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

// Quantized rows decode 32 columns (one block) at a time into vectors of at most 16 lanes.
using DQ = hn::CappedTag<float, 16>;
using VQ = hn::Vec<DQ>;

constexpr int kGroupRows = 8;  // n <= 4: active rows combined per pass over the outputs
// n > 4: register tile of kTokenTile tokens x kTileVectors output vectors (16 accumulators
// with AVX-512's 32 registers, 8 elsewhere).
constexpr bool kWideRegisterFile = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL;
constexpr int kTokenTile = kWideRegisterFile ? 4 : 2;
constexpr int kTileVectors = 4;
// n > 4: rows per block, so that a block of weight rows (reused by every token tile) stays in L2
// next to the outputs (measured against fixed 128-row blocks: f16 11008x4096, n = 32: 53 -> 83
// GFLOP/s; whole rows are kept, as column blocks break the rows' sequential DRAM reads).
constexpr int64_t kRowBlockBytes = int64_t{256} << 10;

// Decoding of one "chunk" of columns of a row, as raw values (the integers of quantized blocks)
// to be multiplied by Scale(row, c, blocks) · activation (`blocks`: the row's quantized blocks,
// which q4_0x16 needs to tell its groups from its tail).
template <DType kType>
struct ChunkDecoder;

template <typename T>
struct FloatChunkDecoder {
  using D = DF;
  static constexpr int64_t kVectors = 1;
  static int64_t Columns() { return static_cast<int64_t>(hn::Lanes(D())); }
  static HWY_INLINE float Scale(const uint8_t*, int64_t, int64_t) { return 1.0f; }
  static HWY_INLINE void Decode(const uint8_t* row, int64_t c, int64_t, hn::Vec<D>* out) {
    out[0] = FloatElement<T>::Load(D(), reinterpret_cast<const T*>(row) + c);
  }
  static HWY_INLINE float ScalarAt(const uint8_t* row, int64_t c) {
    return FloatElement<T>::Scalar(reinterpret_cast<const T*>(row) + c);
  }
};

template <>
struct ChunkDecoder<DType::kF32> : FloatChunkDecoder<float> {};
template <>
struct ChunkDecoder<DType::kF16> : FloatChunkDecoder<hwy::float16_t> {};
template <>
struct ChunkDecoder<DType::kBF16> : FloatChunkDecoder<hwy::bfloat16_t> {};

template <>
struct ChunkDecoder<DType::kQ8_0> {
  using D = DQ;
  static constexpr int64_t kBlockBytes = 34;
  static constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(DQ()));
  static constexpr int64_t kVectors = 32 / kLanes;
  static int64_t Columns() { return 32; }
  static HWY_INLINE float Scale(const uint8_t* row, int64_t c, int64_t) {
    return BlockScale(row + c / 32 * kBlockBytes);
  }
  static HWY_INLINE void Decode(const uint8_t* row, int64_t c, int64_t, VQ* out) {
    const DQ df;
    const hn::Rebind<int32_t, DQ> di32;
    const hn::Rebind<int8_t, DQ> di8;
    const int8_t* q = reinterpret_cast<const int8_t*>(row + c / 32 * kBlockBytes + 2);
    for (int64_t v = 0; v < kVectors; ++v) {
      out[v] = hn::ConvertTo(df, hn::PromoteTo(di32, hn::LoadU(di8, q + v * kLanes)));
    }
  }
};

template <>
struct ChunkDecoder<DType::kQ4_0> {
  using D = DQ;
  static constexpr int64_t kBlockBytes = 18;
  static constexpr int64_t kLanes = static_cast<int64_t>(hn::MaxLanes(DQ()));
  static constexpr int64_t kVectors = 32 / kLanes;
  static int64_t Columns() { return 32; }
  static HWY_INLINE float Scale(const uint8_t* row, int64_t c, int64_t) {
    return BlockScale(row + c / 32 * kBlockBytes);
  }
  // The nibbles are split and re-centred (q - 8) on bytes, before the widening: narrow vectors,
  // which leaves the wide ports to the conversion and the FMAs. With AVX-512, a nibble indexes a
  // 16-entry table of the floats -8..7 directly (VPERMPS reads only the low four index bits),
  // which replaces the re-centring and the int -> float conversion.
  static HWY_INLINE void Decode(const uint8_t* row, int64_t c, int64_t, VQ* out) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    const __m512 table = _mm512_setr_ps(-8.0f, -7.0f, -6.0f, -5.0f, -4.0f, -3.0f, -2.0f, -1.0f,
                                        0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f);
    const __m512i bytes = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c / 32 * kBlockBytes + 2)));
    out[0] = VQ{_mm512_permutexvar_ps(bytes, table)};
    out[1] = VQ{_mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), table)};
#else
    const DQ df;
    const hn::Rebind<int32_t, DQ> di32;
    const hn::Rebind<int8_t, DQ> di8;
    const hn::Rebind<uint8_t, DQ> du8;
    const uint8_t* q = row + c / 32 * kBlockBytes + 2;
    const auto mask = hn::Set(du8, 0x0F);
    const auto eight = hn::Set(di8, 8);
    for (int64_t v = 0; v < kVectors / 2; ++v) {
      const auto packed = hn::LoadU(du8, q + v * kLanes);
      const auto low = hn::Sub(hn::BitCast(di8, hn::And(packed, mask)), eight);
      const auto high = hn::Sub(hn::BitCast(di8, hn::ShiftRight<4>(packed)), eight);
      out[v] = hn::ConvertTo(df, hn::PromoteTo(di32, low));
      out[kVectors / 2 + v] = hn::ConvertTo(df, hn::PromoteTo(di32, high));
    }
#endif
  }
};

// q4_0x16: the block is gathered back into q4_0 order (four 4-byte moves) and decoded as q4_0. No
// model stores ffn_down_t, the only transposed operand, in this layout; this keeps every product
// correct for any weight.
template <>
struct ChunkDecoder<DType::kQ4_0x16> {
  using D = DQ;
  static constexpr int64_t kBlockBytes = 18;
  static constexpr int64_t kVectors = ChunkDecoder<DType::kQ4_0>::kVectors;
  static int64_t Columns() { return 32; }
  static HWY_INLINE float Scale(const uint8_t* row, int64_t c, int64_t blocks) {
    return BlockScale(row +
                      Q4x16ScaleOffset(static_cast<size_t>(c / 32), static_cast<size_t>(blocks)));
  }
  static HWY_INLINE void Decode(const uint8_t* row, int64_t c, int64_t blocks, VQ* out) {
    const BlockQ4_0 block =
        Q4_0x16Block(row, static_cast<size_t>(c / 32), static_cast<size_t>(blocks));
    ChunkDecoder<DType::kQ4_0>::Decode(reinterpret_cast<const uint8_t*>(&block), 0, 1, out);
  }
};

// Blocks whose scales are fetched together (see AccumulateGroup).
constexpr int64_t kScaleBlocks = 16;

// out[k] = factor · scale of block (c / 32 + k), for k < count <= kScaleBlocks. The f16 scales are
// copied with scalar moves (load/store ports) and converted in one vector pass, so the
// per-block work on the vector ports is a broadcast load.
template <DType kType>
HWY_INLINE void ScaledBlockScales(const uint8_t* row, int64_t c, int64_t count, float factor,
                                  int64_t blocks, float* out) {
  constexpr int64_t kBlockBytes = ChunkDecoder<kType>::kBlockBytes;
  const uint8_t* first = row + c / 32 * kBlockBytes;
  if constexpr (kType == DType::kQ4_0x16) {
    for (int64_t k = 0; k < count; ++k) {
      out[k] = factor * ChunkDecoder<kType>::Scale(row, c + 32 * k, blocks);
    }
    return;
  }
  if (count < 8) {  // short rows (tiny models): one conversion per block is cheaper
    for (int64_t k = 0; k < count; ++k) out[k] = factor * BlockScale(first + k * kBlockBytes);
    return;
  }
  HWY_ALIGN uint16_t bits[kScaleBlocks] = {};
  for (int64_t k = 0; k < count; ++k) std::memcpy(&bits[k], first + k * kBlockBytes, 2);
  const DQ df;
  const hn::Rebind<hwy::float16_t, DQ> dh;
  const auto vfactor = hn::Set(df, factor);
  for (int64_t k = 0; k < kScaleBlocks; k += static_cast<int64_t>(hn::Lanes(df))) {
    const auto halves = hn::Load(dh, reinterpret_cast<const hwy::float16_t*>(bits + k));
    hn::Store(hn::Mul(hn::PromoteTo(df, halves), vfactor), df, out + k);
  }
}

// ------------------------------------------------------------------------------------------------
// n <= 4

// Bytes of row storage that hold columns [0, c) (c a multiple of the block size for quantized
// rows).
template <DType kType>
constexpr int64_t ColumnBytes(int64_t c) {
  switch (kType) {
    case DType::kF32:
      return 4 * c;
    case DType::kF16:
    case DType::kBF16:
      return 2 * c;
    case DType::kQ8_0:
      return c / 32 * 34;
    default:
      return c / 32 * 18;
  }
}

// Y[t][c0, c1) += Σ_r a[r · kTokens + t] · W_r[c0, c1) for kRows rows and kTokens tokens (token t's
// outputs at y + t · y_stride); `ahead` (null or kRows rows) are prefetched at the same columns.
// Each block of a row is decoded once and serves the kTokens tokens.
template <DType kType, int kRows, int kTokens>
HWY_INLINE void AccumulateGroup(const uint8_t* const* w, const uint8_t* const* ahead,
                                const float* a, int64_t c0, int64_t c1, int64_t blocks, float* y,
                                int64_t y_stride) {
  using Dec = ChunkDecoder<kType>;
  using D = typename Dec::D;
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  if constexpr (IsQuantized(kType)) {
    for (int64_t c = c0; c < c1; c += 32 * kScaleBlocks) {
      const int64_t count = std::min(kScaleBlocks, (c1 - c) / 32);
      HWY_ALIGN float scaled[kRows][kTokens][kScaleBlocks];
      for (int r = 0; r < kRows; ++r) {
        if constexpr (kTokens == 1) {
          ScaledBlockScales<kType>(w[r], c, count, a[r], blocks, scaled[r][0]);
        } else {  // the row's block scales once, times each token's activation (exact: x 1.0f)
          HWY_ALIGN float scales[kScaleBlocks] = {};
          ScaledBlockScales<kType>(w[r], c, count, 1.0f, blocks, scales);
          for (int t = 0; t < kTokens; ++t) {
            const float factor = a[r * kTokens + t];
            for (int64_t k = 0; k < kScaleBlocks; ++k) scaled[r][t][k] = scales[k] * factor;
          }
        }
      }
      for (int64_t k = 0; k < count; ++k) {
        const int64_t ck = c + 32 * k;
        hn::Vec<D> acc[kTokens][Dec::kVectors];
        for (int t = 0; t < kTokens; ++t) {
          for (int64_t v = 0; v < Dec::kVectors; ++v) {
            acc[t][v] = hn::LoadU(d, y + t * y_stride + ck + v * lanes);
          }
        }
        // Every fourth block (72 bytes of q4_0, 136 of q8_0), two lines of each row ahead: about
        // one prefetch per line (q4_0), spread over the pass. One prefetch per block and row
        // spent a load slot per 18 bytes; a burst of all the rows' lines at once stalled on the
        // full miss buffers.
        if (ahead != nullptr && k % 4 == 0) {
          for (int r = 0; r < kRows; ++r) {
            hwy::Prefetch(ahead[r] + ColumnBytes<kType>(ck));
            hwy::Prefetch(ahead[r] + ColumnBytes<kType>(ck) + 64);
          }
        }
        for (int r = 0; r < kRows; ++r) {
          hn::Vec<D> raw[Dec::kVectors];
          Dec::Decode(w[r], ck, blocks, raw);
          for (int t = 0; t < kTokens; ++t) {
            const auto vscale = hn::Set(d, scaled[r][t][k]);
            for (int64_t v = 0; v < Dec::kVectors; ++v) {
              acc[t][v] = hn::MulAdd(raw[v], vscale, acc[t][v]);
            }
          }
        }
        for (int t = 0; t < kTokens; ++t) {
          for (int64_t v = 0; v < Dec::kVectors; ++v) {
            hn::StoreU(acc[t][v], d, y + t * y_stride + ck + v * lanes);
          }
        }
      }
    }
  } else {
    int64_t c = c0;
    for (; c + lanes <= c1; c += lanes) {
      hn::Vec<D> acc[kTokens];
      for (int t = 0; t < kTokens; ++t) acc[t] = hn::LoadU(d, y + t * y_stride + c);
      for (int r = 0; r < kRows; ++r) {
        if (ahead != nullptr) hwy::Prefetch(ahead[r] + ColumnBytes<kType>(c));
        hn::Vec<D> raw[1];
        Dec::Decode(w[r], c, blocks, raw);
        for (int t = 0; t < kTokens; ++t) {
          acc[t] = hn::MulAdd(raw[0], hn::Set(d, a[r * kTokens + t]), acc[t]);
        }
      }
      for (int t = 0; t < kTokens; ++t) hn::StoreU(acc[t], d, y + t * y_stride + c);
    }
    for (; c < c1; ++c) {
      for (int t = 0; t < kTokens; ++t) {
        float sum = y[t * y_stride + c];
        for (int r = 0; r < kRows; ++r) sum += a[r * kTokens + t] * Dec::ScalarAt(w[r], c);
        y[t * y_stride + c] = sum;
      }
    }
  }
}

// The last `left` (< kRows) rows of a scan batch, as groups of kRows / 2, kRows / 4, ... rows
// (a binary decomposition: log2(kRows) group sizes compiled instead of kRows - 1).
template <DType kType, int kRows, int kTokens>
HWY_INLINE void AccumulateRemainder(int64_t left, const uint8_t* const* group, const float* a,
                                    int64_t c0, int64_t c1, int64_t blocks, float* y,
                                    int64_t y_stride) {
  if constexpr (kRows > 1) {
    constexpr int kHalf = kRows / 2;
    if (left >= kHalf) {
      AccumulateGroup<kType, kHalf, kTokens>(group, nullptr, a, c0, c1, blocks, y, y_stride);
      group += kHalf;
      a += kHalf * kTokens;
      left -= kHalf;
    }
    AccumulateRemainder<kType, kHalf, kTokens>(left, group, a, c0, c1, blocks, y, y_stride);
  }
}

// Decode and batches of up to kStreamTokens tokens: the active rows (a[t, r] != 0 for some
// token) in groups of kGroupRows, every row streamed once, whole, for all the tokens. Rows are
// scanned in batches so that the rows kPrefetchRows ahead are known and can be prefetched while a
// group is accumulated (decode streams the weights from DRAM; the hardware prefetcher alone keeps
// too little in flight, and it cannot guess which rows a sparse activation skips or where the
// next gathered row lies).
template <DType kType, int kTokens>
void AccumulateStreaming(const MatrixView& w, const RowSet& rows, const float* a,
                         int64_t a_stride, int64_t c0, int64_t c1, float* y, int64_t y_stride) {
  constexpr int64_t kScanBatch = 1024;
  constexpr int64_t kPrefetchRows = kGroupRows;  // the next group
  const int64_t blocks = w.cols / 32;
  int64_t active[kScanBatch];
  float active_a[kScanBatch * kTokens];  // [row][token]
  for (int64_t begin = 0; begin < rows.size(); begin += kScanBatch) {
    const int64_t end = std::min(rows.size(), begin + kScanBatch);
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      bool any = false;
      for (int t = 0; t < kTokens; ++t) {
        const float value = a[t * a_stride + rows.Slot(i)];
        active_a[count * kTokens + t] = value;
        any |= value != 0.0f;
      }
      if (any) active[count++] = rows.Row(i);
    }
    const uint8_t* group[kGroupRows];
    const uint8_t* ahead_rows[kGroupRows];
    int64_t g = 0;
    for (; g + kGroupRows <= count; g += kGroupRows) {
      for (int j = 0; j < kGroupRows; ++j) group[j] = w.Row(active[g + j]);
      // Near the end of the batch the window repeats its last row (already in flight).
      const int64_t next = g + kPrefetchRows;
      const bool prefetch = next < count;
      if (prefetch) {
        for (int j = 0; j < kGroupRows; ++j) {
          ahead_rows[j] = w.Row(active[std::min(next + j, count - 1)]);
        }
      }
      AccumulateGroup<kType, kGroupRows, kTokens>(group, prefetch ? ahead_rows : nullptr,
                                                  active_a + g * kTokens, c0, c1, blocks, y,
                                                  y_stride);
    }
    const int64_t left = count - g;
    for (int j = 0; j < left; ++j) group[j] = w.Row(active[g + j]);
    AccumulateRemainder<kType, kGroupRows, kTokens>(left, group, active_a + g * kTokens, c0, c1,
                                                    blocks, y, y_stride);
  }
}

// ------------------------------------------------------------------------------------------------
// n > 4

// Y[t0 + t, c .. c + chunk) += Σ_{rows of the block} A[t0 + t, r] · W[r, c ..], for kTokens tokens.
template <DType kType, int kTokens, int kChunks>
HWY_INLINE void AccumulateTile(const MatrixView& w, const RowSet& rows, int64_t i0, int64_t i1,
                               const float* a, int64_t a_stride, int64_t t0, int64_t c, float* y,
                               int64_t y_stride) {
  using Dec = ChunkDecoder<kType>;
  using D = typename Dec::D;
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  constexpr int64_t kVectors = Dec::kVectors * kChunks;
  hn::Vec<D> acc[kTokens][kVectors];
  for (int t = 0; t < kTokens; ++t) {
    for (int64_t v = 0; v < kVectors; ++v) acc[t][v] = hn::Zero(d);
  }
  for (int64_t i = i0; i < i1; ++i) {
    const int64_t r = rows.Row(i);
    const int64_t slot = rows.Slot(i);
    float act[kTokens];
    bool any = false;
    for (int t = 0; t < kTokens; ++t) {
      act[t] = a[(t0 + t) * a_stride + slot];
      any |= act[t] != 0.0f;
    }
    if (!any) continue;
    // Decode (and scale) the row's slice once; each vector then serves kTokens FMAs.
    const uint8_t* row = w.Row(r);
    hn::Vec<D> values[kVectors];
    for (int k = 0; k < kChunks; ++k) {
      const int64_t ck = c + k * Dec::Columns();
      Dec::Decode(row, ck, w.cols / 32, values + k * Dec::kVectors);
      if constexpr (IsQuantized(kType)) {
        const auto scale = hn::Set(d, Dec::Scale(row, ck, w.cols / 32));
        for (int64_t v = 0; v < Dec::kVectors; ++v) {
          values[k * Dec::kVectors + v] = hn::Mul(values[k * Dec::kVectors + v], scale);
        }
      }
    }
    for (int t = 0; t < kTokens; ++t) {
      const auto vs = hn::Set(d, act[t]);
      for (int64_t v = 0; v < kVectors; ++v) acc[t][v] = hn::MulAdd(values[v], vs, acc[t][v]);
    }
  }
  for (int t = 0; t < kTokens; ++t) {
    float* yt = y + (t0 + t) * y_stride + c;
    for (int64_t v = 0; v < kVectors; ++v) {
      hn::StoreU(hn::Add(hn::LoadU(d, yt + v * lanes), acc[t][v]), d, yt + v * lanes);
    }
  }
}

template <DType kType, int kTokens>
HWY_INLINE void AccumulateTokens(const MatrixView& w, const RowSet& rows, int64_t i0, int64_t i1,
                                 const float* a, int64_t a_stride, int64_t t0, int64_t c0,
                                 int64_t c1, float* y, int64_t y_stride) {
  using Dec = ChunkDecoder<kType>;
  constexpr int kChunks = std::max<int>(1, kTileVectors / Dec::kVectors);
  const int64_t tile_columns = Dec::Columns() * kChunks;
  int64_t c = c0;
  for (; c + tile_columns <= c1; c += tile_columns) {
    AccumulateTile<kType, kTokens, kChunks>(w, rows, i0, i1, a, a_stride, t0, c, y, y_stride);
  }
  for (; c + Dec::Columns() <= c1; c += Dec::Columns()) {
    AccumulateTile<kType, kTokens, 1>(w, rows, i0, i1, a, a_stride, t0, c, y, y_stride);
  }
  if constexpr (!IsQuantized(kType)) {
    for (; c < c1; ++c) {  // float rows whose length is not a multiple of the vector
      for (int t = 0; t < kTokens; ++t) {
        float sum = y[(t0 + t) * y_stride + c];
        for (int64_t i = i0; i < i1; ++i) {
          const float act = a[(t0 + t) * a_stride + rows.Slot(i)];
          if (act != 0.0f) sum += act * Dec::ScalarAt(w.Row(rows.Row(i)), c);
        }
        y[(t0 + t) * y_stride + c] = sum;
      }
    }
  }
}

template <DType kType>
void AccumulateT(const MatrixView& w, RowSet rows, const float* a, int64_t a_stride, int64_t n,
                 int64_t c0, int64_t c1, float* y, int64_t y_stride) {
  // Up to kStreamTokens tokens: each row streamed once for all of them (4 tokens through the
  // register tiles below read each row's slice once per 64 columns, a scattered walk over
  // the row block that ran at a fifth of the decode rate).
  switch (n) {
    case 1:
      return AccumulateStreaming<kType, 1>(w, rows, a, a_stride, c0, c1, y, y_stride);
    case 2:
      return AccumulateStreaming<kType, 2>(w, rows, a, a_stride, c0, c1, y, y_stride);
    case 3:
      return AccumulateStreaming<kType, 3>(w, rows, a, a_stride, c0, c1, y, y_stride);
    case 4:
      return AccumulateStreaming<kType, 4>(w, rows, a, a_stride, c0, c1, y, y_stride);
    default:
      break;
  }
  const int64_t row_block =
      std::clamp<int64_t>(kRowBlockBytes / static_cast<int64_t>(w.row_bytes), 8, 256);
  for (int64_t i0 = 0; i0 < rows.size(); i0 += row_block) {
    const int64_t i1 = std::min(rows.size(), i0 + row_block);
    int64_t t = 0;
    for (; t + kTokenTile <= n; t += kTokenTile) {
      AccumulateTokens<kType, kTokenTile>(w, rows, i0, i1, a, a_stride, t, c0, c1, y, y_stride);
    }
    if constexpr (kTokenTile > 3) {
      if (n - t == 3)
        AccumulateTokens<kType, 3>(w, rows, i0, i1, a, a_stride, t, c0, c1, y, y_stride);
    }
    if constexpr (kTokenTile > 2) {
      if (n - t == 2)
        AccumulateTokens<kType, 2>(w, rows, i0, i1, a, a_stride, t, c0, c1, y, y_stride);
    }
    if (n - t == 1)
      AccumulateTokens<kType, 1>(w, rows, i0, i1, a, a_stride, t, c0, c1, y, y_stride);
  }
}

void AccumulateRowsTransposed(const MatrixView& w, RowSet rows, const float* a, int64_t a_stride,
                              int64_t n, int64_t c0, int64_t c1, float* y, int64_t y_stride) {
  switch (w.dtype) {
    case DType::kF32:
      return AccumulateT<DType::kF32>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    case DType::kF16:
      return AccumulateT<DType::kF16>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    case DType::kBF16:
      return AccumulateT<DType::kBF16>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    case DType::kQ8_0:
      return AccumulateT<DType::kQ8_0>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    case DType::kQ4_0:
      return AccumulateT<DType::kQ4_0>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    case DType::kQ4_0x16:
      return AccumulateT<DType::kQ4_0x16>(w, rows, a, a_stride, n, c0, c1, y, y_stride);
    default:
      return;
  }
}

// ------------------------------------------------------------------------------------------------
// DecodeRows

template <DType kType>
void DecodeRowsT(const MatrixView& w, int64_t row, int64_t count, float* out) {
  using Dec = ChunkDecoder<kType>;
  using D = typename Dec::D;
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r = row; r < row + count; ++r) {
    const uint8_t* src = w.Row(r);
    float* dst = out + (r - row) * w.cols;
    int64_t c = 0;
    for (; c + Dec::Columns() <= w.cols; c += Dec::Columns()) {
      hn::Vec<D> raw[Dec::kVectors];
      Dec::Decode(src, c, w.cols / 32, raw);
      const auto vscale = hn::Set(d, Dec::Scale(src, c, w.cols / 32));
      for (int64_t v = 0; v < Dec::kVectors; ++v) {
        hn::StoreU(hn::Mul(raw[v], vscale), d, dst + c + v * lanes);
      }
    }
    if constexpr (!IsQuantized(kType)) {
      for (; c < w.cols; ++c) dst[c] = Dec::ScalarAt(src, c);
    }
  }
}

void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out) {
  switch (w.dtype) {
    case DType::kF32:
      return DecodeRowsT<DType::kF32>(w, row, count, out);
    case DType::kF16:
      return DecodeRowsT<DType::kF16>(w, row, count, out);
    case DType::kBF16:
      return DecodeRowsT<DType::kBF16>(w, row, count, out);
    case DType::kQ8_0:
      return DecodeRowsT<DType::kQ8_0>(w, row, count, out);
    case DType::kQ4_0:
      return DecodeRowsT<DType::kQ4_0>(w, row, count, out);
    case DType::kQ4_0x16:
      return DecodeRowsT<DType::kQ4_0x16>(w, row, count, out);
    default:
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(AccumulateRowsTransposed);
HWY_EXPORT(DecodeRows);

void AccumulateRowsTransposed(const MatrixView& w, RowSet rows, const float* a, int64_t a_stride,
                              int64_t n, int64_t c0, int64_t c1, float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(AccumulateRowsTransposed)(w, rows, a, a_stride, n, c0, c1, y, y_stride);
}

void DecodeRows(const MatrixView& w, int64_t row, int64_t count, float* out) {
  HWY_DYNAMIC_DISPATCH(DecodeRows)(w, row, count, out);
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
