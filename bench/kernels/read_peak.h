// The STREAM-like read kernel of bench_kernels: the sum of a buffer's 64-bit words, read as four
// concurrent streams with the widest vectors the CPU has (Highway dispatch, as the kernels), so
// that the peak it measures is what a well-formed read loop on this machine achieves.
#pragma once

#include <cstdint>

namespace pinfer::bench {

// Sum of the words of [data, data + words); words is a multiple of 64.
uint64_t SumWords(const uint64_t* data, int64_t words);

}  // namespace pinfer::bench
