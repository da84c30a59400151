// The kernels of the non-llama architectures (OPT): LayerNorm with a bias and the broadcast bias
// add of the biased projections. Plain loops the compiler vectorises: they run once per row of
// `dim` values, next to products over whole matrices. Their scalar references (f64, the
// definition) are in cpu::reference below, and tests/cpu/layer_norm_test.cc compares the two.
#pragma once

#include <cstdint>

namespace pinfer::cpu {

// out = (x - mean(x)) / sqrt(var(x) + eps) · weight + bias, over n values (var: the biased
// variance, as torch.nn.LayerNorm; out may alias x).
void LayerNorm(const float* x, const float* weight, const float* bias, int64_t n, float eps,
               float* out);
// y[r, c] += bias[c] for r < rows, c < cols.
void AddBias(const float* bias, int64_t rows, int64_t cols, float* y);

namespace reference {
void LayerNorm(const float* x, const float* weight, const float* bias, int64_t n, float eps,
               float* out);
void AddBias(const float* bias, int64_t rows, int64_t cols, float* y);
}  // namespace reference

}  // namespace pinfer::cpu
