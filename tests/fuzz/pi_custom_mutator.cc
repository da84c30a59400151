// Linked into the fuzz targets whose input is a .pi artifact: libFuzzer then mutates through
// MutatePi (pi_mutator.h), which keeps the checksums valid, instead of its byte mutations alone.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/pi_mutator.h"

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  return pinfer::fuzz::MutatePi(data, size, max_size, seed);
}
