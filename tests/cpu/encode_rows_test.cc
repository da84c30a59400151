// EncodeRows, how new keys and values enter a KV cache, against the format's own encoders
// (reference::EncodeRows over pinfer::EncodeRow): byte for byte, on every SIMD target and thread
// count, for f32, f16 and q8_0, with lengths that leave a tail after the last vector, and values
// where f16 rounding is delicate: halfway cases (round to even), subnormal halves, the largest
// half and the values that round up to infinity, infinities and signed zeros.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "format/dtype.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/reference_kernels.h"
#include "tests/cpu/kernel_test_util.h"

namespace pinfer::cpu::testing {
namespace {

class EncodeRowsTest : public KernelTest {};

// Random values of several magnitudes, then the delicate ones.
std::vector<float> ValuesToEncode(size_t n, uint32_t seed) {
  std::vector<float> x = RandomVector(n, seed);
  for (size_t i = 0; i < n; i += 7) x[i] *= 1e-5f;  // half subnormals
  for (size_t i = 3; i < n; i += 11) x[i] *= 3e4f;  // up to and beyond 65504
  const float inf = std::numeric_limits<float>::infinity();
  const float special[] = {0.0f,      -0.0f,           65504.0f,        65519.99f,
                           65520.0f,  -65520.0f,       70000.0f,        inf,
                           -inf,      6.1035156e-05f,  6.0975552e-05f,  5.96e-08f,
                           2.98e-08f, 2.99e-08f,       1.0f + 0x1p-11f, 1.0f + 0x3p-11f,
                           1e-30f,    -3.0517578e-05f, 0.33333334f};
  for (size_t i = 0; i < sizeof(special) / sizeof(special[0]) && 5 * i < n; ++i) {
    x[5 * i] = special[i];
  }
  return x;
}

TEST_P(EncodeRowsTest, MatchesTheFormatsEncodersByteForByte) {
  uint32_t seed = 40;
  for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
    for (auto [rows, cols] :
         {std::pair<int64_t, int64_t>{1, 32}, {3, 96}, {5, 160}, {600, 64}, {2, 4096}}) {
      SCOPED_TRACE(::testing::Message() << DTypeName(type) << " " << rows << "x" << cols);
      std::vector<float> x = ValuesToEncode(rows * cols, seed++);
      // q8_0 of infinities is undefined (as in ggml): finite values only there.
      if (type == DType::kQ8_0) {
        for (float& v : x) {
          if (!std::isfinite(v)) v = 1.0f;
        }
      }
      const size_t bytes = rows * *RowBytes(type, cols);
      std::vector<uint8_t> expected(bytes, 0xAB), actual(bytes, 0xCD);
      reference::EncodeRows(type, x.data(), rows, cols, expected.data());
      EncodeRows(type, x.data(), rows, cols, actual.data());
      for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(actual[i], expected[i]) << "byte " << i;
    }
  }
}

// An odd length (not a whole vector) through f16: the tail is encoded as well.
TEST_P(EncodeRowsTest, F16OfAnOddLength) {
  const std::vector<float> x = ValuesToEncode(37, 9);
  std::vector<uint8_t> expected(74), actual(74, 0xCD);
  reference::EncodeRows(DType::kF16, x.data(), 1, 37, expected.data());
  EncodeRows(DType::kF16, x.data(), 1, 37, actual.data());
  EXPECT_EQ(actual, expected);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, EncodeRowsTest, ::testing::ValuesIn(AllTargetsAndThreads()),
                         ParamName);

}  // namespace
}  // namespace pinfer::cpu::testing
