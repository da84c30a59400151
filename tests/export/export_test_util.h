// Shared pieces of the export tests: the programs they run (paths from CMake), the bundled text,
// the one-line error check, and tensor comparisons.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "format/pi_file.h"
#include "tests/runtime/test_models.h"

namespace pinfer::testing {

test::ProgramResult Run(const char* program, const std::vector<std::string>& args);
inline test::ProgramResult PiConvert(const std::vector<std::string>& args) {
  return Run(PI_CONVERT_PATH, args);
}
inline test::ProgramResult PiExport(const std::vector<std::string>& args) {
  return Run(PI_EXPORT_PATH, args);
}
inline test::ProgramResult PiTrainPredictor(const std::vector<std::string>& args) {
  return Run(PI_TRAIN_PREDICTOR_PATH, args);
}
inline test::ProgramResult PiRun(const std::vector<std::string>& args) {
  return Run(PI_RUN_PATH, args);
}
inline test::ProgramResult PiProfile(const std::vector<std::string>& args) {
  return Run(PI_PROFILE_PATH, args);
}

// The bundled TinyStories text (the profile's and the decision tests' tokens).
std::string BundledText();

// A failed run: exit status 1, nothing on stdout, exactly one stderr line "<program>: error: ..."
// that mentions `mention`.
void ExpectOneLineError(const test::ProgramResult& r, const std::string& program,
                        const std::string& mention);

// Every tensor of `a` is in `b` with the same dtype, shape and bytes, and `b` has no others.
void ExpectSameTensors(const PiFile& a, const PiFile& b);

// The .pi file at `path`, or null after a failed expectation naming why.
std::unique_ptr<PiFile> OpenPi(const std::string& path);

}  // namespace pinfer::testing
