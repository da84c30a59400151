// Typed, non-throwing access to fields of a parsed JSON object (nlohmann-json throws on a type
// mismatch; these check first). Every error names the file and the key, on one line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace pinfer {

// Reads and parses a JSON file; the error names the file and says where the syntax breaks.
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string file)
      : object_(object), file_(std::move(file)) {}

  // Absent or null: nullopt. Present with another type: an error.
  absl::StatusOr<std::optional<int64_t>> OptionalInt(std::string_view key) const;
  absl::StatusOr<std::optional<double>> OptionalNumber(std::string_view key) const;
  absl::StatusOr<std::optional<bool>> OptionalBool(std::string_view key) const;
  absl::StatusOr<std::optional<std::string>> OptionalString(std::string_view key) const;
  // Absent or null: an error.
  absl::StatusOr<int64_t> Int(std::string_view key) const;
  absl::StatusOr<std::string> String(std::string_view key) const;

  // nullptr when absent.
  const nlohmann::json* Find(std::string_view key) const;
  const std::string& file() const { return file_; }

 private:
  absl::Status WrongType(std::string_view key, std::string_view expected) const;
  const nlohmann::json& object_;
  std::string file_;
};

}  // namespace pinfer
