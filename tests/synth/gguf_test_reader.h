// A small, independent GGUF v3 reader for the pi-synth tests: it parses what GgufWriter wrote
// from the spec (ggml/include/gguf.h's layout description), so the tests check the writer against
// the format rather than against itself.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "format/mapped_file.h"

namespace pinfer::synth::testing {

struct GgufTestTensor {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] contiguous
  uint32_t type = 0;
  uint64_t relative_offset = 0;
  std::span<const uint8_t> data;  // filled once the data offset is known
};

using GgufTestValue =
    std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<std::string>,
                 std::vector<double>, std::vector<int64_t>>;

struct GgufTestFile {
  std::unique_ptr<MappedFile> mapping;
  uint32_t version = 0;
  uint64_t data_offset = 0;
  std::map<std::string, GgufTestValue> metadata;
  std::vector<GgufTestTensor> tensors;

  const GgufTestTensor* Find(const std::string& name) const;
};

// Parses the whole file; any inconsistency (bad magic, truncation, unknown type, data outside the
// file, misaligned offsets) is an error.
absl::StatusOr<GgufTestFile> ReadGgufForTest(const std::string& path);

}  // namespace pinfer::synth::testing
