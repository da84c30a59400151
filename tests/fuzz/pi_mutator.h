// The semantic mutator of the .pi fuzz targets (LLVMFuzzerCustomMutator of model_fuzzer,
// profile_fuzzer, predictor_fuzzer and plan_fuzzer). Byte-level mutations of a .pi almost always
// break its checksums, so the readers would only ever see inputs that PiFile rejects. Here a
// valid input is decoded, its metadata values, tensor table entries or tensor bytes are changed,
// and it is encoded again with valid checksums; sometimes an index or header field is then poked
// raw (checksums repaired again) to reach PiFile's own checks behind the checksum. Inputs that do
// not decode get libFuzzer's byte mutations followed by a checksum repair.
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/metadata.h"

namespace pinfer::fuzz {

// The LLVMFuzzerCustomMutator contract: mutates data[0, size) in place, returns the new size
// (at most max_size).
size_t MutatePi(uint8_t* data, size_t size, size_t max_size, unsigned int seed);

// One change to metadata as MutatePi makes it (a value, its type, a key added or removed); the
// sample file's mutator shares it, its metadata being the same format.
void MutateMetadata(unsigned int seed, Metadata& metadata);

}  // namespace pinfer::fuzz
