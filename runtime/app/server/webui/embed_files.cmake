# Writes OUTPUT, a C++ file holding each of INPUTS (a ;-list of paths) as a byte array, for
# pinfer::EmbeddedWebUiFiles() (webui_files.h). Run at build time by the custom command in
# CMakeLists.txt: cmake -DOUTPUT=... -DINPUTS=... -P embed_files.cmake
# CMake's regular expressions have no {n}: 16 bytes spelled out, for the line breaks.
string(REPEAT "0x..," 16 _line)
set(_arrays "")
set(_entries "")
set(_index 0)
foreach(_input IN LISTS INPUTS)
  get_filename_component(_name "${_input}" NAME)
  file(READ "${_input}" _hex HEX)
  string(LENGTH "${_hex}" _hex_length)
  if(_hex_length EQUAL 0)
    message(FATAL_ERROR "${_input}: empty file, nothing to embed")
  endif()
  # "3c21..." -> "0x3c,0x21,...", 16 bytes a line.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
  string(REGEX REPLACE "(${_line})" "\\1\n    " _bytes "${_bytes}")
  string(APPEND _arrays "constexpr unsigned char kFile${_index}[] = {\n    ${_bytes}\n};\n")
  string(APPEND _entries
         "    {\"${_name}\", {reinterpret_cast<const char*>(kFile${_index}), sizeof(kFile${_index})}},\n")
  math(EXPR _index "${_index} + 1")
endforeach()
set(_text "// Generated at build time by runtime/app/server/webui/embed_files.cmake; do not edit.
#include \"runtime/app/server/webui/webui_files.h\"

namespace pinfer {
namespace {
${_arrays}}  // namespace

std::span<const EmbeddedFile> EmbeddedWebUiFiles() {
  static const EmbeddedFile kFiles[] = {
${_entries}  };
  return kFiles;
}

}  // namespace pinfer
")
# Rewritten only when it changes, so that an unchanged page does not recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" _old)
  if(_old STREQUAL _text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${_text}")
