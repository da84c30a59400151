// The bundled real models converted once per test process (tools/convert's library), in a
// temporary directory: relu-llama-260k with its declared activations, and stories260K.
#pragma once

#include <string>

namespace pinfer::testing_support {

// Paths of model.pi files; a failed conversion fails the calling test (ASSERT inside).
const std::string& ReluLlamaModel();
const std::string& Stories260kModel();
// A fresh path in the test's temporary directory.
std::string TempPath(const std::string& name);

}  // namespace pinfer::testing_support
