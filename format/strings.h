// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW=0),
// so std::string_view does not convert to absl::StrCat's arguments, absl::Status messages or
// flat_hash_map<std::string> lookups. Our interfaces use std::string_view; wrap it with Sv() where
// it meets Abseil. (absl::StrFormat's %s accepts std::string_view directly.)
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace pinfer {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view StdSv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace pinfer
