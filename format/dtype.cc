#include "format/dtype.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

constexpr std::array<DTypeInfo, 8> kInfos = {{
    {"f32", 1, 4, false, true},
    {"f16", 1, 2, false, true},
    {"bf16", 1, 2, false, true},
    {"q8_0", kQuantBlockElements, 34, true, true},
    {"q4_0", kQuantBlockElements, 18, true, true},
    {"i32", 1, 4, false, false},
    {"u8", 1, 1, false, false},
    {"q4_0x16", kQuantBlockElements, 18, true, true},
}};

}  // namespace

bool IsKnownDType(uint32_t raw) { return raw < kInfos.size(); }

const DTypeInfo& GetDTypeInfo(DType dtype) { return kInfos[static_cast<uint32_t>(dtype)]; }

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (uint32_t i = 0; i < kInfos.size(); ++i) {
    if (kInfos[i].name == name) return static_cast<DType>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", Sv(name), "' (expected f32, f16, bf16, q8_0, q4_0, q4_0x16, i32 or u8)"));
}

absl::StatusOr<DType> ParseWeightDType(std::string_view name) {
  absl::StatusOr<DType> dtype = ParseDType(name);
  if (!dtype.ok() || *dtype == DType::kI32 || *dtype == DType::kU8 || *dtype == DType::kQ4_0x16) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown weight dtype '", Sv(name), "' (expected f32, f16, bf16, q8_0 or q4_0)"));
  }
  return dtype;
}

absl::StatusOr<uint64_t> RowBytes(DType dtype, uint64_t elements) {
  const DTypeInfo& info = GetDTypeInfo(dtype);
  if (elements % info.block_elements != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a row of ", elements, " elements is not a multiple of the ",
                                                   info.block_elements, "-element ", Sv(info.name),
                                                   " block"));
  }
  const uint64_t blocks = elements / info.block_elements;
  if (blocks > UINT64_MAX / info.block_bytes) {
    return absl::InvalidArgumentError("tensor size overflows 64 bits");
  }
  return blocks * info.block_bytes;
}

absl::StatusOr<uint64_t> TensorBytes(DType dtype, std::span<const uint64_t> shape) {
  if (shape.empty()) return absl::InvalidArgumentError("a tensor needs at least one dimension");
  uint64_t rows = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) {
    if (shape[i] != 0 && rows > UINT64_MAX / shape[i]) {
      return absl::InvalidArgumentError("tensor size overflows 64 bits");
    }
    rows *= shape[i];
  }
  absl::StatusOr<uint64_t> row_bytes = RowBytes(dtype, shape.back());
  if (!row_bytes.ok()) return row_bytes.status();
  if (*row_bytes != 0 && rows > UINT64_MAX / *row_bytes) {
    return absl::InvalidArgumentError("tensor size overflows 64 bits");
  }
  return rows * *row_bytes;
}

}  // namespace pinfer
