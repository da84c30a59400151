// What the conversion-source fuzz targets (llama2.c, HF) check about a model a reader accepted:
// what the converter would validate and then read, done the same way.
#pragma once

#include "tools/convert/source_model.h"

namespace pinfer::fuzz {

// The config and vocabulary the converter validates must also be runnable (fuzz_checks.h), and
// every tensor must decode, all of its rows, through read_rows and (when present) read_native.
void ExerciseSourceModel(const SourceModel& model);

}  // namespace pinfer::fuzz
