#include "tools/convert/json_fields.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "format/file_access.h"
#include "format/strings.h"

namespace pinfer {

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  absl::StatusOr<std::string> read = ReadRegularFile(path);
  if (!read.ok()) return read.status();
  const std::string& contents = *read;
  // The SAX parser is used only to learn where a syntax error is; the DOM parse is non-throwing.
  nlohmann::json json = nlohmann::json::parse(contents, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    struct Locator : nlohmann::json_sax<nlohmann::json> {
      size_t where = 0;
      bool null() override { return true; }
      bool boolean(bool) override { return true; }
      bool number_integer(number_integer_t) override { return true; }
      bool number_unsigned(number_unsigned_t) override { return true; }
      bool number_float(number_float_t, const string_t&) override { return true; }
      bool string(string_t&) override { return true; }
      bool binary(binary_t&) override { return true; }
      bool start_object(std::size_t) override { return true; }
      bool key(string_t&) override { return true; }
      bool end_object() override { return true; }
      bool start_array(std::size_t) override { return true; }
      bool end_array() override { return true; }
      bool parse_error(std::size_t position, const std::string&,
                       const nlohmann::detail::exception&) override {
        where = position;
        return false;
      }
    } locator;
    nlohmann::json::sax_parse(contents, &locator, nlohmann::json::input_format_t::json,
                              /*strict=*/true, /*ignore_comments=*/false);
    return absl::DataLossError(
        absl::StrCat(path, ": not valid JSON (syntax error near byte ", locator.where, ")"));
  }
  return json;
}

const nlohmann::json* JsonFields::Find(std::string_view key) const {
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(std::string(key));
  return it == object_.end() ? nullptr : &*it;
}

absl::Status JsonFields::WrongType(std::string_view key, std::string_view expected) const {
  return absl::InvalidArgumentError(absl::StrCat(file_, ": '", Sv(key), "' is not ", Sv(expected)));
}

absl::StatusOr<std::optional<int64_t>> JsonFields::OptionalInt(std::string_view key) const {
  const nlohmann::json* v = Find(key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  // An unsigned value beyond int64 would wrap to a negative one.
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX}) {
    return WrongType(key, "an integer in the int64 range");
  }
  if (v->is_number_integer()) return std::optional<int64_t>(v->get<int64_t>());
  // Some configs write integers as 4096.0. The range is checked first: converting a double
  // outside int64 (1e300, inf, NaN) is undefined behaviour.
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (d >= -0x1p63 && d < 0x1p63 && d == std::trunc(d)) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return WrongType(key, "an integer");
}

absl::StatusOr<std::optional<double>> JsonFields::OptionalNumber(std::string_view key) const {
  const nlohmann::json* v = Find(key);
  if (v == nullptr || v->is_null()) return std::optional<double>();
  if (v->is_number()) return std::optional<double>(v->get<double>());
  return WrongType(key, "a number");
}

absl::StatusOr<std::optional<bool>> JsonFields::OptionalBool(std::string_view key) const {
  const nlohmann::json* v = Find(key);
  if (v == nullptr || v->is_null()) return std::optional<bool>();
  if (v->is_boolean()) return std::optional<bool>(v->get<bool>());
  return WrongType(key, "true or false");
}

absl::StatusOr<std::optional<std::string>> JsonFields::OptionalString(std::string_view key) const {
  const nlohmann::json* v = Find(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(v->get<std::string>());
  return WrongType(key, "a string");
}

absl::StatusOr<int64_t> JsonFields::Int(std::string_view key) const {
  absl::StatusOr<std::optional<int64_t>> v = OptionalInt(key);
  if (!v.ok()) return v.status();
  if (!*v) return absl::InvalidArgumentError(absl::StrCat(file_, ": '", Sv(key), "' is missing"));
  return **v;
}

absl::StatusOr<std::string> JsonFields::String(std::string_view key) const {
  absl::StatusOr<std::optional<std::string>> v = OptionalString(key);
  if (!v.ok()) return v.status();
  if (!*v) return absl::InvalidArgumentError(absl::StrCat(file_, ": '", Sv(key), "' is missing"));
  return **v;
}

}  // namespace pinfer
