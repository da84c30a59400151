// Dot-product kernels for q8_0/q4_0 weights against activations quantized to q8_0 (the body of
// MatVec/MatMul for quantized weights), and the activation quantizer. Compiled once per Highway
// target and dispatched at run time.
//
// A block dot product is exact in int32 (32 products of |w| <= 128 and |x| <= 127); only the
// per-block scaling is float. The integer part is target-specific, behind a small "policy":
//   - AVX3_DL (AVX-512 VNNI): VPDPBUSD multiplies unsigned by signed bytes and adds groups of four
//     into int32 lanes. Two blocks fill a 512-bit vector; lanes 0-7 belong to the first block and
//     8-15 to the second, so the per-block scales are applied as a lane vector [dA x8, dB x8]
//     (permuted out of the scales of 16 blocks, gathered once per row).
//     q4_0 nibbles q are already unsigned: Σ (q-8)·x = Σ q·x - 8·Σ x. q8_0 weights w become
//     unsigned by flipping the sign bit (w + 128): Σ w·x = Σ (w+128)·x - 128·Σ x. The correction
//     -c·Σx depends on the activations only, so it is computed once per token and block (one more
//     VPDPBUSD, of the constant c against -x) and seeds the accumulator of every row.
//   - AVX3 (AVX-512 without VNNI): the same layout; VPMADDUBSW + VPMADDWD instead of VPDPBUSD. For
//     q8_0 the signs move onto the weights (|x| times ±w), which keeps VPMADDUBSW's int16 pair sums
//     from saturating (|x| <= 127 and |w| <= 127, as ggml's quantizer guarantees).
//   - AVX2: one block per 256-bit vector, scales broadcast, the same VPMADDUBSW scheme.
//   - every other target (NEON, SSE4, EMU128/SCALAR...): portable Highway code that widens to int16
//     and uses ReorderWidenMulAccumulate.
// Register tile and cache blocking as in dot_float_simd.cc.
#include <algorithm>
#include <cstring>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/dot_quant_simd.cc"
#include "hwy/cache_control.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
// Highway 1.0.3's AVX3_DL attribute set lacks avx512vnni although its run-time check requires it
// (the target means Ice Lake and later); enable it for the VPDPBUSD intrinsics.
#pragma GCC target("avx512vnni")
#endif
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

constexpr int64_t kBlock = 32;         // elements per q8_0/q4_0 block
constexpr int64_t kQ8BlockBytes = 34;  // f16 scale + 32 int8
constexpr int64_t kQ4BlockBytes = 18;  // f16 scale + 16 bytes of nibbles
constexpr int64_t kBlockChunk = 64;    // blocks per column chunk (n > 1)
constexpr int64_t kRowBlock = 64;      // rows per cache block (n > 1)
constexpr int64_t kPrefetchTiles = 2;  // n = 1: prefetch distance, in row tiles
constexpr int64_t kStreamTokens = 16;  // batches up to this size stream the rows (see below)

template <DType kType>
constexpr int64_t BlockBytes() {
  return kType == DType::kQ8_0 ? kQ8BlockBytes : kQ4BlockBytes;
}

// ------------------------------------------------------------------------------------------------
// Activation quantization (portable).

void QuantizeActivations(const float* x, int64_t cols, int64_t t0, int64_t t1, int8_t* q,
                         float* d) {
  const hn::CappedTag<float, kBlock> df;
  const hn::Rebind<int32_t, decltype(df)> di32;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t blocks = cols / kBlock;
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t b = 0; b < blocks; ++b) {
      const float* src = x + t * cols + b * kBlock;
      auto vmax = hn::Zero(df);
      for (int64_t i = 0; i < kBlock; i += lanes)
        vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, src + i)));
      const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
      const float scale = amax / 127.0f;
      const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
      d[t * blocks + b] = F16ToF32(F32ToF16(scale));
      const auto vinv = hn::Set(df, inverse);
      const auto half = hn::Set(df, 0.5f);
      const auto one = hn::Set(df, 1.0f);
      int8_t* dst = q + t * cols + b * kBlock;
      for (int64_t i = 0; i < kBlock; i += lanes) {
        // roundf: round half away from zero (the hardware rounding is half to even).
        const auto v = hn::Mul(hn::LoadU(df, src + i), vinv);
        const auto whole = hn::Trunc(v);
        const auto away =
            hn::IfThenElseZero(hn::Ge(hn::Abs(hn::Sub(v, whole)), half), hn::CopySign(one, v));
        const auto rounded = hn::ConvertTo(di32, hn::Add(whole, away));
        hn::StoreU(hn::DemoteTo(di8, rounded), di8, dst + i);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Policies: how one step of kBlocks blocks of a weight row and of a token's activations is loaded,
// multiplied and accumulated.

#if HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3

template <DType kType>
struct Policy512 {
  static constexpr int64_t kBlocks = 2;
  // Block scales are loaded 16 at a time (one gather per row) and spread to the lanes of each
  // step with one permute, instead of being assembled from two f16 loads at every step.
  static constexpr int64_t kSuper = 16;
  static constexpr int kRowTile = 4;
  static constexpr int kTokenTile = 4;
  static constexpr bool kVnni = HWY_TARGET == HWY_AVX3_DL;
  using Acc = __m512;
  using Scales = __m512;  // the f32 scales of kSuper consecutive blocks
  using Lane = __m512;    // [scale of the step's first block x8, of its second x8]
  using W = __m512i;      // VNNI: unsigned form (q4_0 nibbles, q8_0 w ^ 0x80); else nibbles / w
  struct X {
    __m512i x;           // int8 activations (zero past the last block)
    __m512i abs_x;       // AVX3 q8_0: |x|
    __mmask64 negative;  // AVX3 q8_0: lanes where x < 0
    __m512i correction;  // int32 lanes: -c·Σ of the lane's four x (c = 128 or 8); zero if unused
  };

  static HWY_INLINE Acc Zero() { return _mm512_setzero_ps(); }

  static HWY_INLINE Scales LoadWeightScales(const uint8_t* row, int64_t b, int64_t count) {
    constexpr int kStride = static_cast<int>(BlockBytes<kType>());
    const __m512i offsets =
        _mm512_setr_epi32(0, kStride, 2 * kStride, 3 * kStride, 4 * kStride, 5 * kStride,
                          6 * kStride, 7 * kStride, 8 * kStride, 9 * kStride, 10 * kStride,
                          11 * kStride, 12 * kStride, 13 * kStride, 14 * kStride, 15 * kStride);
    const void* base = row + b * kStride;
    // Each 32-bit gather reads a block's f16 scale and the two bytes after it (inside the block).
    const __m512i raw = count == kSuper
                            ? _mm512_i32gather_epi32(offsets, base, 1)
                            : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
                                                          static_cast<__mmask16>((1u << count) - 1),
                                                          offsets, base, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
  }
  static HWY_INLINE Scales LoadActScales(const float* d, int64_t count) {
    return count == kSuper ? _mm512_loadu_ps(d)
                           : _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), d);
  }
  static HWY_INLINE Scales MulScales(Scales a, Scales b) { return _mm512_mul_ps(a, b); }
  // Lanes of step k: scales 2k and 2k + 1, on the lanes of the first and second block (q8_0:
  // halves; q4_0: alternating quarters, see LoadW).
  static HWY_INLINE Lane StepScale(Scales s, int64_t k) {
    const __m512i pattern = kType == DType::kQ8_0
                                ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                                : _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    const __m512i index = _mm512_add_epi32(pattern, _mm512_set1_epi32(static_cast<int>(2 * k)));
    return _mm512_permutexvar_ps(index, s);
  }
  static HWY_INLINE Lane MulLanes(Lane a, Lane b) { return _mm512_mul_ps(a, b); }

  template <bool kFull>
  static HWY_INLINE W LoadW(const uint8_t* row, int64_t b, int64_t /*blocks*/) {
    const uint8_t* p = row + b * BlockBytes<kType>();
    if constexpr (kType == DType::kQ8_0) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
      const __m256i hi =
          kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQ8BlockBytes + 2))
                : _mm256_setzero_si256();
      const __m512i bytes = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      return kVnni ? _mm512_xor_si512(bytes, _mm512_set1_epi8(static_cast<char>(0x80))) : bytes;
    } else {
      const __m128i qa = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
      const __m128i qb =
          kFull ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kQ4BlockBytes + 2))
                : _mm_setzero_si128();
      // [A.lo, B.lo, A.hi, B.hi] in 128-bit quarters; LoadX puts the activations in that order.
      const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
      const __m512i mixed =
          _mm512_inserti64x4(_mm512_castsi256_si512(both), _mm256_srli_epi16(both, 4), 1);
      return _mm512_and_si512(mixed, _mm512_set1_epi8(0x0F));
    }
  }

  template <bool kFull>
  static HWY_INLINE X LoadX(const int8_t* q, int64_t /*blocks*/) {
    X x;
    x.x = kFull ? _mm512_loadu_si512(q)
                : _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)));
    if constexpr (kType == DType::kQ4_0) {  // [A0-15 A16-31 B0-15 B16-31] -> the weights' order
      x.x = _mm512_shuffle_i64x2(x.x, x.x, _MM_SHUFFLE(3, 1, 2, 0));
    }
    const __m512i c = _mm512_set1_epi8(kType == DType::kQ8_0 ? static_cast<char>(0x80) : 8);
    const __m512i negated = _mm512_sub_epi8(_mm512_setzero_si512(), x.x);
    if constexpr (kVnni) {
      x.correction = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c, negated);
    } else if constexpr (kType == DType::kQ4_0) {
      x.correction = _mm512_madd_epi16(_mm512_maddubs_epi16(c, negated), _mm512_set1_epi16(1));
    } else {
      x.abs_x = _mm512_abs_epi8(x.x);
      x.negative = _mm512_movepi8_mask(x.x);
      x.correction = _mm512_setzero_si512();
    }
    return x;
  }

  static HWY_INLINE Acc Accumulate(const W& w, const X& x, Lane scale, Acc acc) {
    __m512i dot;
    if constexpr (kVnni) {
      dot = _mm512_dpbusd_epi32(x.correction, w, x.x);
    } else if constexpr (kType == DType::kQ4_0) {
      dot = _mm512_add_epi32(x.correction,
                             _mm512_madd_epi16(_mm512_maddubs_epi16(w, x.x), _mm512_set1_epi16(1)));
    } else {
      const __m512i signed_w = _mm512_mask_sub_epi8(w, x.negative, _mm512_setzero_si512(), w);
      dot = _mm512_madd_epi16(_mm512_maddubs_epi16(x.abs_x, signed_w), _mm512_set1_epi16(1));
    }
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
  }

  static HWY_INLINE float Sum(Acc acc) { return _mm512_reduce_add_ps(acc); }
};

#if HWY_TARGET == HWY_AVX3_DL
// q4_0 with VBMI and VNNI: four blocks per step. The 4 x 16 packed bytes are gathered from two
// overlapping loads with one VPERMT2B; the low and the high nibbles then each fill a vector
// ([A, B, C, D] x 16 elements) and meet activations rearranged the same way (two 128-bit
// shuffles per token and step), two VPDPBUSD chained into one accumulator. Lanes 4k..4k+3 belong
// to block k. Per row and 128 multiply-adds: one permute, three nibble ops, two VPDPBUSD, and the
// convert / scale / FMA that the two-block layout needs per 64.
struct PolicyQ4Vbmi {
  static constexpr int64_t kBlocks = 4;
  static constexpr int64_t kSuper = 16;
  static constexpr int kRowTile = 4;
  static constexpr int kTokenTile =
      2;  // two vectors of weights per row: keep the tile in registers
  using Acc = __m512;
  using Scales = __m512;
  using Lane = __m512;
  struct W {
    __m512i low, high;  // nibbles of elements 0-15 / 16-31 of blocks A..D (unsigned)
  };
  struct X {
    __m512i low, high;   // the matching activations
    __m512i correction;  // -8·Σ of the lane's eight activations
  };

  static HWY_INLINE Acc Zero() { return _mm512_setzero_ps(); }
  static HWY_INLINE Scales LoadWeightScales(const uint8_t* row, int64_t b, int64_t count) {
    return Policy512<DType::kQ4_0>::LoadWeightScales(row, b, count);
  }
  static HWY_INLINE Scales LoadActScales(const float* d, int64_t count) {
    return Policy512<DType::kQ4_0>::LoadActScales(d, count);
  }
  static HWY_INLINE Scales MulScales(Scales a, Scales b) { return _mm512_mul_ps(a, b); }
  static HWY_INLINE Lane StepScale(Scales s, int64_t k) {
    const __m512i index =
        _mm512_add_epi32(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                         _mm512_set1_epi32(static_cast<int>(4 * k)));
    return _mm512_permutexvar_ps(index, s);
  }
  static HWY_INLINE Lane MulLanes(Lane a, Lane b) { return _mm512_mul_ps(a, b); }

  static HWY_INLINE __mmask64 FirstBytes(int64_t n) {
    return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : (__mmask64{1} << n) - 1;
  }

  template <bool kFull>
  static HWY_INLINE W LoadW(const uint8_t* row, int64_t b, int64_t blocks) {
    const uint8_t* p = row + b * kQ4BlockBytes;
    __m512i first, second;  // bytes [0, 64) and [8, 72) of the four blocks
    if constexpr (kFull) {
      first = _mm512_loadu_si512(p);
      second = _mm512_loadu_si512(p + 8);
    } else {
      const int64_t bytes = blocks * kQ4BlockBytes;
      first = _mm512_maskz_loadu_epi8(FirstBytes(bytes), p);
      second = _mm512_maskz_loadu_epi8(FirstBytes(bytes - 8), p + 8);
    }
    // Byte j of the result: element j % 16 of block j / 16, at offset 18·(j / 16) + 2 + j % 16;
    // offsets below 64 come from `first`, the others from `second` (index 64 + offset - 8).
    alignas(64) static constexpr uint8_t kIndex[64] = {
        2,  3,  4,  5,  6,  7,  8,  9,  10,  11,  12,  13,  14,  15,  16,  17,    // A
        20, 21, 22, 23, 24, 25, 26, 27, 28,  29,  30,  31,  32,  33,  34,  35,    // B
        38, 39, 40, 41, 42, 43, 44, 45, 46,  47,  48,  49,  50,  51,  52,  53,    // C
        56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127};  // D
    const __m512i packed = _mm512_permutex2var_epi8(first, _mm512_load_si512(kIndex), second);
    const __m512i mask = _mm512_set1_epi8(0x0F);
    return {_mm512_and_si512(packed, mask), _mm512_and_si512(_mm512_srli_epi16(packed, 4), mask)};
  }

  template <bool kFull>
  static HWY_INLINE X LoadX(const int8_t* q, int64_t blocks) {
    __m512i first, second;  // natural order: [A0-15 A16-31 B0-15 B16-31], [C.., D..]
    if constexpr (kFull) {
      first = _mm512_loadu_si512(q);
      second = _mm512_loadu_si512(q + 64);
    } else {
      first = _mm512_maskz_loadu_epi8(FirstBytes(blocks * kBlock), q);
      second = _mm512_maskz_loadu_epi8(FirstBytes(blocks * kBlock - 64), q + 64);
    }
    X x;
    x.low = _mm512_shuffle_i64x2(first, second, _MM_SHUFFLE(2, 0, 2, 0));
    x.high = _mm512_shuffle_i64x2(first, second, _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i eight = _mm512_set1_epi8(8);
    const __m512i zero = _mm512_setzero_si512();
    x.correction =
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, eight, _mm512_sub_epi8(zero, x.low)), eight,
                            _mm512_sub_epi8(zero, x.high));
    return x;
  }

  static HWY_INLINE Acc Accumulate(const W& w, const X& x, Lane scale, Acc acc) {
    const __m512i dot =
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(x.correction, w.low, x.low), w.high, x.high);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
  }

  static HWY_INLINE float Sum(Acc acc) { return _mm512_reduce_add_ps(acc); }
};

template <DType kType>
using Policy = std::conditional_t<kType == DType::kQ4_0, PolicyQ4Vbmi, Policy512<kType>>;
#else
template <DType kType>
using Policy = Policy512<kType>;
#endif

#elif HWY_TARGET == HWY_AVX2

template <DType kType>
struct PolicyAvx2 {
  static constexpr int64_t kBlocks = 1;
  static constexpr int64_t kSuper = 1;
  static constexpr int kRowTile = 4;
  static constexpr int kTokenTile = 2;
  using Acc = __m256;
  using Scales = __m256;  // one block's scale, broadcast
  using Lane = __m256;
  using W = __m256i;  // q4_0: nibbles (unsigned); q8_0: signed w
  struct X {
    __m256i x;
    __m256i abs_x;       // q8_0
    __m256i correction;  // q4_0: -8·Σ of the lane's four x
  };

  static HWY_INLINE Acc Zero() { return _mm256_setzero_ps(); }
  static HWY_INLINE Scales LoadWeightScales(const uint8_t* row, int64_t b, int64_t) {
    uint16_t bits;
    std::memcpy(&bits, row + b * BlockBytes<kType>(), 2);
    return _mm256_set1_ps(_cvtsh_ss(bits));
  }
  static HWY_INLINE Scales LoadActScales(const float* d, int64_t) { return _mm256_set1_ps(d[0]); }
  static HWY_INLINE Scales MulScales(Scales a, Scales b) { return _mm256_mul_ps(a, b); }
  static HWY_INLINE Lane StepScale(Scales s, int64_t) { return s; }
  static HWY_INLINE Lane MulLanes(Lane a, Lane b) { return _mm256_mul_ps(a, b); }

  template <bool kFull>
  static HWY_INLINE W LoadW(const uint8_t* row, int64_t b, int64_t /*blocks*/) {
    const uint8_t* p = row + b * BlockBytes<kType>();
    if constexpr (kType == DType::kQ8_0) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    } else {
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
      const __m128i mask = _mm_set1_epi8(0x0F);
      return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(packed, mask)),
                                     _mm_and_si128(_mm_srli_epi16(packed, 4), mask), 1);
    }
  }

  template <bool kFull>
  static HWY_INLINE X LoadX(const int8_t* q, int64_t /*blocks*/) {
    X x;
    x.x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    if constexpr (kType == DType::kQ8_0) {
      x.abs_x = _mm256_abs_epi8(x.x);
    } else {
      const __m256i negated = _mm256_sub_epi8(_mm256_setzero_si256(), x.x);
      x.correction = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), negated),
                                       _mm256_set1_epi16(1));
    }
    return x;
  }

  static HWY_INLINE Acc Accumulate(const W& w, const X& x, Lane scale, Acc acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i dot;
    if constexpr (kType == DType::kQ8_0) {
      dot = _mm256_madd_epi16(_mm256_maddubs_epi16(x.abs_x, _mm256_sign_epi8(w, x.x)), ones);
    } else {
      dot = _mm256_add_epi32(x.correction, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x.x), ones));
    }
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
  }

  static HWY_INLINE float Sum(Acc acc) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};

template <DType kType>
using Policy = PolicyAvx2<kType>;

#else  // portable Highway

template <DType kType>
struct PolicyPortable {
  using D16 = hn::CappedTag<int16_t, 16>;
  using D32 = hn::RepartitionToWide<D16>;
  using V16 = hn::Vec<D16>;
  static constexpr int64_t kLanes16 = static_cast<int64_t>(hn::MaxLanes(D16()));
  static constexpr int64_t kVectors = kBlock / kLanes16;
  static constexpr int64_t kBlocks = 1;
  static constexpr int64_t kSuper = 1;
  static constexpr int kRowTile = 2;
  static constexpr int kTokenTile = 2;
  using Acc = float;
  using Scales = float;
  using Lane = float;
  struct W {
    V16 v[kVectors];  // the block's 32 signed weights, widened
  };
  struct X {
    V16 v[kVectors];
  };

  static HWY_INLINE Acc Zero() { return 0.0f; }
  static HWY_INLINE Scales LoadWeightScales(const uint8_t* row, int64_t b, int64_t) {
    return BlockScale(row + b * BlockBytes<kType>());
  }
  static HWY_INLINE Scales LoadActScales(const float* d, int64_t) { return d[0]; }
  static HWY_INLINE Scales MulScales(Scales a, Scales b) { return a * b; }
  static HWY_INLINE Lane StepScale(Scales s, int64_t) { return s; }
  static HWY_INLINE Lane MulLanes(Lane a, Lane b) { return a * b; }

  template <bool kFull>
  static HWY_INLINE W LoadW(const uint8_t* row, int64_t b, int64_t /*blocks*/) {
    const D16 d16;
    const uint8_t* p = row + b * BlockBytes<kType>();
    W w;
    if constexpr (kType == DType::kQ8_0) {
      const hn::Rebind<int8_t, D16> d8;
      const int8_t* q = reinterpret_cast<const int8_t*>(p + 2);
      for (int64_t i = 0; i < kVectors; ++i) {
        w.v[i] = hn::PromoteTo(d16, hn::LoadU(d8, q + i * kLanes16));
      }
    } else {
      const hn::Rebind<uint8_t, D16> du8;
      const hn::Rebind<uint16_t, D16> du16;
      const V16 eight = hn::Set(d16, 8);
      const auto mask = hn::Set(du16, 0x0F);
      for (int64_t i = 0; i < kVectors / 2; ++i) {
        const auto packed = hn::PromoteTo(du16, hn::LoadU(du8, p + 2 + i * kLanes16));
        w.v[i] = hn::Sub(hn::BitCast(d16, hn::And(packed, mask)), eight);
        w.v[kVectors / 2 + i] = hn::Sub(hn::BitCast(d16, hn::ShiftRight<4>(packed)), eight);
      }
    }
    return w;
  }

  template <bool kFull>
  static HWY_INLINE X LoadX(const int8_t* q, int64_t /*blocks*/) {
    const D16 d16;
    const hn::Rebind<int8_t, D16> d8;
    X x;
    for (int64_t i = 0; i < kVectors; ++i) {
      x.v[i] = hn::PromoteTo(d16, hn::LoadU(d8, q + i * kLanes16));
    }
    return x;
  }

  static HWY_INLINE Acc Accumulate(const W& w, const X& x, Lane scale, Acc acc) {
    const D32 d32;
    auto sum0 = hn::Zero(d32);
    auto sum1 = hn::Zero(d32);
    for (int64_t i = 0; i < kVectors; ++i) {
      sum0 = hn::ReorderWidenMulAccumulate(d32, w.v[i], x.v[i], sum0, sum1);
    }
    const int32_t dot = hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
    return acc + static_cast<float>(dot) * scale;
  }

  static HWY_INLINE float Sum(Acc acc) { return acc; }
};

template <DType kType>
using Policy = PolicyPortable<kType>;

#endif

// ------------------------------------------------------------------------------------------------
// Tiles and blocking (shared by every policy).

// One step of a tile: kBlocks blocks, or the `blocks` < kBlocks left at the end of a row.
// `ahead` (null or kRows rows): rows to prefetch at the same column (see RunQuantTile).
template <class P, DType kType, bool kFull, int kRows, int kTokens>
HWY_INLINE void QuantStep(const uint8_t* const* w, const uint8_t* const* ahead,
                          const int8_t* const* xq, int64_t b, int64_t blocks, int64_t k,
                          const typename P::Scales (&wscale)[kRows],
                          const typename P::Scales (&xscale)[kTokens],
                          typename P::Acc (&acc)[kRows][kTokens]) {
  typename P::W wv[kRows];
  for (int r = 0; r < kRows; ++r) {
    if (ahead != nullptr) {  // a step reads up to 72 bytes of a row: two lines cover it
      hwy::Prefetch(ahead[r] + b * BlockBytes<kType>());
      hwy::Prefetch(ahead[r] + b * BlockBytes<kType>() + 64);
    }
    wv[r] = P::template LoadW<kFull>(w[r], b, blocks);
  }
  if constexpr (kTokens == 1) {  // wscale already holds the product of both scales
    const typename P::X xv = P::template LoadX<kFull>(xq[0] + b * kBlock, blocks);
    for (int r = 0; r < kRows; ++r) {
      acc[r][0] = P::Accumulate(wv[r], xv, P::StepScale(wscale[r], k), acc[r][0]);
    }
  } else {
    typename P::Lane wlane[kRows];
    for (int r = 0; r < kRows; ++r) wlane[r] = P::StepScale(wscale[r], k);
    for (int t = 0; t < kTokens; ++t) {
      const typename P::X xv = P::template LoadX<kFull>(xq[t] + b * kBlock, blocks);
      const typename P::Lane xlane = P::StepScale(xscale[t], k);
      for (int r = 0; r < kRows; ++r) {
        acc[r][t] = P::Accumulate(wv[r], xv, P::MulLanes(wlane[r], xlane), acc[r][t]);
      }
    }
  }
}

// sums[r][t] = Σ over blocks [b0, b1) of row r · token t.
template <DType kType, int kRows, int kTokens>
HWY_INLINE void QuantTile(const uint8_t* const* w, const uint8_t* const* ahead,
                          const int8_t* const* xq, const float* const* xd, int64_t b0, int64_t b1,
                          float (&sums)[kRows][kTokens]) {
  using P = Policy<kType>;
  typename P::Acc acc[kRows][kTokens];
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) acc[r][t] = P::Zero();
  }
  for (int64_t sb = b0; sb < b1; sb += P::kSuper) {
    const int64_t count = std::min(P::kSuper, b1 - sb);
    typename P::Scales wscale[kRows];
    typename P::Scales xscale[kTokens];
    for (int r = 0; r < kRows; ++r) wscale[r] = P::LoadWeightScales(w[r], sb, count);
    for (int t = 0; t < kTokens; ++t) xscale[t] = P::LoadActScales(xd[t] + sb, count);
    if constexpr (kTokens == 1) {
      for (int r = 0; r < kRows; ++r) wscale[r] = P::MulScales(wscale[r], xscale[0]);
    }
    int64_t b = sb, k = 0;
    for (; b + P::kBlocks <= sb + count; b += P::kBlocks, ++k) {
      QuantStep<P, kType, true, kRows, kTokens>(w, ahead, xq, b, P::kBlocks, k, wscale, xscale,
                                                acc);
    }
    if (b < sb + count) {
      QuantStep<P, kType, false, kRows, kTokens>(w, ahead, xq, b, sb + count - b, k, wscale, xscale,
                                                 acc);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) sums[r][t] = P::Sum(acc[r][t]);
  }
}

template <DType kType, int kRows, int kTokens>
HWY_INLINE void RunQuantTile(const MatrixView& w, const RowSet& rows, int64_t i0,
                             const QuantizedActivations& x, int64_t t0, int64_t b0, int64_t b1,
                             float* y, int64_t y_stride, bool prefetch) {
  const int64_t blocks = x.cols / kBlock;
  const uint8_t* wr[kRows];
  int64_t slots[kRows];
  for (int r = 0; r < kRows; ++r) {
    slots[r] = rows.Slot(i0 + r);
    wr[r] = w.Row(rows.Row(i0 + r));
  }
  const int8_t* xq[kTokens];
  const float* xd[kTokens];
  for (int t = 0; t < kTokens; ++t) {
    xq[t] = x.q + (t0 + t) * x.cols;
    xd[t] = x.d + (t0 + t) * blocks;
  }
  // Decode streams the weights from DRAM once; the hardware prefetcher alone does not keep enough
  // of it in flight while the core computes, so each step also prefetches the rows of the tile
  // kPrefetchTiles ahead (measured: +30-50% single-thread bandwidth for q8_0/q4_0). Small
  // batches stream the rows the same way (their first token tile prefetches; the others find
  // the tile in L1); prompts reuse each weight tile from cache and need no prefetch.
  const uint8_t* ahead_rows[kRows];
  const uint8_t* const* ahead = nullptr;
  if (prefetch && i0 + (kPrefetchTiles + 1) * kRows <= rows.size()) {
    for (int r = 0; r < kRows; ++r)
      ahead_rows[r] = w.Row(rows.Row(i0 + kPrefetchTiles * kRows + r));
    ahead = ahead_rows;
  }
  float sums[kRows][kTokens];
  QuantTile<kType, kRows, kTokens>(wr, ahead, xq, xd, b0, b1, sums);
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kTokens; ++t) {
      float& out = y[(t0 + t) * y_stride + slots[r]];
      out = b0 == 0 ? sums[r][t] : out + sums[r][t];
    }
  }
}

template <DType kType, int kTokens>
HWY_INLINE void QuantRowsForTokens(const MatrixView& w, const RowSet& rows, int64_t i_begin,
                                   int64_t i_end, const QuantizedActivations& x, int64_t t0,
                                   int64_t b0, int64_t b1, float* y, int64_t y_stride) {
  constexpr int kRowTile = Policy<kType>::kRowTile;
  int64_t i = i_begin;
  for (; i + kRowTile <= i_end; i += kRowTile) {
    RunQuantTile<kType, kRowTile, kTokens>(w, rows, i, x, t0, b0, b1, y, y_stride, kTokens == 1);
  }
  for (; i < i_end; ++i) {
    RunQuantTile<kType, 1, kTokens>(w, rows, i, x, t0, b0, b1, y, y_stride, kTokens == 1);
  }
}

// Small batches (n <= kStreamTokens): every row tile is read from memory once, whole, as in
// decode, and used for all n tokens in turn while it sits in L1: the weights stream at the
// decode rate instead of being revisited per column chunk, so a step of a few tokens costs about
// one token's weight traffic. The first token tile prefetches the rows ahead.
template <DType kType, int kTokens>
HWY_INLINE void QuantTileTokens(const MatrixView& w, const RowSet& rows, int64_t i, int kRows,
                                const QuantizedActivations& x, int64_t t0, int64_t blocks,
                                float* y, int64_t y_stride, bool prefetch) {
  constexpr int kRowTile = Policy<kType>::kRowTile;
  if (kRows == kRowTile) {
    RunQuantTile<kType, kRowTile, kTokens>(w, rows, i, x, t0, 0, blocks, y, y_stride, prefetch);
  } else {
    for (int r = 0; r < kRows; ++r) {
      RunQuantTile<kType, 1, kTokens>(w, rows, i + r, x, t0, 0, blocks, y, y_stride, false);
    }
  }
}

template <DType kType>
HWY_INLINE void QuantRowsSmallBatch(const MatrixView& w, const RowSet& rows,
                                    const QuantizedActivations& x, float* y, int64_t y_stride) {
  constexpr int kRowTile = Policy<kType>::kRowTile;
  constexpr int kTokenTile = Policy<kType>::kTokenTile;
  const int64_t count = rows.size();
  const int64_t blocks = w.cols / kBlock;
  for (int64_t i = 0; i < count; i += kRowTile) {
    const int tile_rows = static_cast<int>(std::min<int64_t>(kRowTile, count - i));
    int64_t t = 0;
    for (; t + kTokenTile <= x.n; t += kTokenTile) {
      QuantTileTokens<kType, kTokenTile>(w, rows, i, tile_rows, x, t, blocks, y, y_stride, t == 0);
    }
    if (t < x.n) {  // kTokenTile is 2 or 4: the remainder is 1 to 3 tokens
      const int64_t left = x.n - t;
      if (left >= 2 && kTokenTile > 2) {
        QuantTileTokens<kType, 2>(w, rows, i, tile_rows, x, t, blocks, y, y_stride, t == 0);
        t += 2;
      }
      if (t < x.n) {
        QuantTileTokens<kType, 1>(w, rows, i, tile_rows, x, t, blocks, y, y_stride, t == 0);
      }
    }
  }
}

template <DType kType, int kTokens>
HWY_INLINE void QuantTokenRemainder(const MatrixView& w, const RowSet& rows, int64_t i0, int64_t i1,
                                    const QuantizedActivations& x, int64_t t, int64_t b0,
                                    int64_t b1, float* y, int64_t y_stride) {
  if constexpr (kTokens > 0) {
    if (x.n - t == kTokens) {
      QuantRowsForTokens<kType, kTokens>(w, rows, i0, i1, x, t, b0, b1, y, y_stride);
    } else {
      QuantTokenRemainder<kType, kTokens - 1>(w, rows, i0, i1, x, t, b0, b1, y, y_stride);
    }
  }
}

template <DType kType>
void DotRowsQuantT(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                   int64_t y_stride) {
  constexpr int kTokenTile = Policy<kType>::kTokenTile;
  const int64_t count = rows.size();
  const int64_t blocks = w.cols / kBlock;
  if (x.n == 1) {
    QuantRowsForTokens<kType, 1>(w, rows, 0, count, x, 0, 0, blocks, y, y_stride);
    return;
  }
  if (x.n <= kStreamTokens) return QuantRowsSmallBatch<kType>(w, rows, x, y, y_stride);
  for (int64_t b0 = 0; b0 < blocks; b0 += kBlockChunk) {
    const int64_t b1 = std::min(blocks, b0 + kBlockChunk);
    for (int64_t i0 = 0; i0 < count; i0 += kRowBlock) {
      const int64_t i1 = std::min(count, i0 + kRowBlock);
      int64_t t = 0;
      for (; t + kTokenTile <= x.n; t += kTokenTile) {
        QuantRowsForTokens<kType, kTokenTile>(w, rows, i0, i1, x, t, b0, b1, y, y_stride);
      }
      QuantTokenRemainder<kType, kTokenTile - 1>(w, rows, i0, i1, x, t, b0, b1, y, y_stride);
    }
  }
}

void DotRowsQuant(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride) {
  switch (w.dtype) {
    case DType::kQ8_0:
      return DotRowsQuantT<DType::kQ8_0>(w, rows, x, y, y_stride);
    case DType::kQ4_0:
      return DotRowsQuantT<DType::kQ4_0>(w, rows, x, y, y_stride);
    default:
      return;  // kernels.cc routes only quantized dtypes here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(QuantizeActivations);
HWY_EXPORT(DotRowsQuant);

void QuantizeActivations(const float* x, int64_t cols, int64_t t0, int64_t t1, int8_t* q,
                         float* d) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivations)(x, cols, t0, t1, q, d);
}

void DotRowsQuant(const MatrixView& w, RowSet rows, const QuantizedActivations& x, float* y,
                  int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(DotRowsQuant)(w, rows, x, y, y_stride);
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
