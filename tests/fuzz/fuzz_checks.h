// What the fuzz targets assert about inputs a reader ACCEPTS: not crashing is not enough when an
// accepted value would break a later stage (an infinite rope_theta, a token id that no longer
// fits). A violated property aborts, so libFuzzer keeps the input as a crash.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "runtime/model/model_config.h"
#include "runtime/model/vocabulary.h"

namespace pinfer::fuzz {

// Aborts with "fuzz: property violated: <what>" unless `ok`.
void Require(bool ok, std::string_view what);

// For `return Rejected(status);` where a reader refuses an input: returns 0 (libFuzzer's "keep
// going") and, when PINFER_FUZZ_TRACE is set, prints the status, so that one can see how far a
// seed or a found input gets (`PINFER_FUZZ_TRACE=1 build-fuzz/bin/X_fuzzer FILE`).
int Rejected(const absl::Status& status);

// A vocabulary a reader returned (and that passes Validate()) must give a tokenizer, which must
// encode and decode text, special pieces included, without failing.
void ExerciseVocabulary(const Vocabulary& vocabulary);

// An accepted config must be one the runtime can run: the shapes Validate() checks, shape
// products (q_dim, kv_dim, matrix sizes) that fit int64, and finite positive rope_theta and
// rms_eps.
void RequireRunnableConfig(const ModelConfig& config);

}  // namespace pinfer::fuzz
