// f32 rows encoded as the KV cache's element types (cpu::EncodeRows): f32 (a copy), f16 and q8_0.
// The f16 conversion is compiled once per Highway target and dispatched at run time; q8_0 reuses
// the activation quantizer of the quantized dot products (dot_quant_simd.cc) and packs its values
// and scales into blocks.
//
// f16: hn::DemoteTo rounds to nearest even only where the CPU converts (F16C, NEON); Highway's
// emulation on the other targets truncates. So the conversion is written with integer operations,
// round to nearest even on every target, bit-identical to pinfer::F32ToF16 (format/half.h) for
// every finite value and infinity (a NaN becomes the quiet NaN 0x7E00, sign kept).
#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "runtime/cpu/encode_rows_simd.cc"
#include "format/quant.h"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "runtime/cpu/simd_common-inl.h"
#include "runtime/cpu/simd_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace pinfer::cpu::simd {
namespace HWY_NAMESPACE {

// Round to nearest even, branch-free (the method of F. Giesen's float_to_half_fast3_rtne):
//   |x| >= 65536 or NaN:   inf (0x7C00) or NaN (0x7E00); 65520 <= |x| < 65536 carries into inf
//                          in the normal formula
//   |x| < 2^-14:           a half subnormal or zero: adding 0.5 makes the FPU round the value
//                          to the 2^-24 grid, which the low bits of the sum then hold
//   otherwise:             rebias the exponent, add half an ulp minus one plus the kept bit's
//                          parity, and drop 13 bits
void EncodeRowsF16(const float* x, int64_t n, uint16_t* out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::Rebind<uint16_t, DF> du16;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  // Magnitudes (the sign bit cleared) compare as signed integers: all of them are below 2^31.
  const auto sign_bit = hn::Set(di, static_cast<int32_t>(0x80000000u));
  const auto inf_or_nan_below = hn::Set(di, 0x47800000 - 1);  // 65536.0f, exclusive
  const auto f32_inf = hn::Set(di, 0x7F800000);
  const auto subnormal_threshold = hn::Set(di, 113 << 23);                         // 2^-14
  const auto denorm_magic_bits = hn::Set(di, ((127 - 15) + (23 - 10) + 1) << 23);  // 0.5f
  const auto denorm_magic = hn::BitCast(df, denorm_magic_bits);
  const auto rebias = hn::Set(di, -(112 << 23) + 0xFFF);  // exponent 127 -> 15, half ulp - 1
  const auto one = hn::Set(di, 1);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto bits = hn::BitCast(di, hn::LoadU(df, x + i));
    const auto sign = hn::And(bits, sign_bit);
    const auto magnitude = hn::Xor(bits, sign);
    const auto special =
        hn::IfThenElse(hn::Gt(magnitude, f32_inf), hn::Set(di, 0x7E00), hn::Set(di, 0x7C00));
    const auto subnormal = hn::Sub(
        hn::BitCast(di, hn::Add(hn::BitCast(df, magnitude), denorm_magic)), denorm_magic_bits);
    const auto odd = hn::And(hn::ShiftRight<13>(magnitude), one);
    const auto normal = hn::ShiftRight<13>(hn::Add(hn::Add(magnitude, rebias), odd));
    auto half = hn::IfThenElse(hn::Lt(magnitude, subnormal_threshold), subnormal, normal);
    half = hn::IfThenElse(hn::Gt(magnitude, inf_or_nan_below), special, half);
    // The sign moves to bit 15 (a logical shift: BitCast to unsigned and back).
    const hn::RebindToUnsigned<DF> du;
    half = hn::Or(half, hn::BitCast(di, hn::ShiftRight<16>(hn::BitCast(du, sign))));
    // Every lane is in [0, 2^16): the saturating demotion from i32 keeps it.
    hn::StoreU(hn::DemoteTo(du16, half), du16, out + i);
  }
  for (; i < n; ++i) out[i] = F32ToF16(x[i]);
}

}  // namespace HWY_NAMESPACE
}  // namespace pinfer::cpu::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pinfer::cpu::simd {

HWY_EXPORT(EncodeRowsF16);

void EncodeRows(DType dtype, const float* x, int64_t rows, int64_t cols, void* out) {
  const int64_t n = rows * cols;
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16:
      HWY_DYNAMIC_DISPATCH(EncodeRowsF16)(x, n, static_cast<uint16_t*>(out));
      return;
    case DType::kQ8_0: {
      // The quantizer's layout (values, then one f32 scale per block, already f16-rounded) packed
      // into blocks, a bounded run of blocks at a time (no allocation). Rows are contiguous and
      // cols is a multiple of 32, so the blocks of all the rows are one run.
      constexpr int64_t kRun = 64;
      int8_t values[kRun * kQuantBlockElements];
      float scales[kRun];
      auto* blocks = static_cast<BlockQ8_0*>(out);
      const int64_t total = n / kQuantBlockElements;
      for (int64_t b0 = 0; b0 < total; b0 += kRun) {
        const int64_t count = std::min(kRun, total - b0);
        QuantizeActivations(x + b0 * kQuantBlockElements, kQuantBlockElements, 0, count, values,
                            scales);
        for (int64_t b = 0; b < count; ++b) {
          blocks[b0 + b].d = F32ToF16(scales[b]);
          std::memcpy(blocks[b0 + b].qs, values + b * kQuantBlockElements, kQuantBlockElements);
        }
      }
      return;
    }
    default:
      return;  // cpu::EncodeRows accepts only the three cache types
  }
}

}  // namespace pinfer::cpu::simd
#endif  // HWY_ONCE
