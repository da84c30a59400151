// The chat page's files as compiled into the program (webui_files.cc is generated at build time
// by embed_files.cmake from index.html, app.js and style.css beside this header).
#pragma once

#include <span>
#include <string_view>

namespace pinfer {

struct EmbeddedFile {
  std::string_view name;   // the source file's name: "index.html", "app.js", ...
  std::string_view bytes;  // its whole content
};

std::span<const EmbeddedFile> EmbeddedWebUiFiles();

}  // namespace pinfer
