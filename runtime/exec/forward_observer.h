// A hook into the forward pass for tools that study the model rather than run it: pi-profile counts
// firing neurons and dumps predictor training samples (FFN input → which neurons fired); sparse
// execution checks its predictions against the true activations.
#pragma once

#include <cstdint>
#include <span>

namespace pinfer {

// One layer's FFN over one evaluated batch of tokens. Pointers are valid during the call only.
struct FfnTrace {
  int64_t layer = 0;
  int64_t pos0 = 0;                 // position of the first token of the batch
  std::span<const int32_t> tokens;  // the batch's token ids
  int64_t dim = 0;
  int64_t n_ff = 0;
  const float* input = nullptr;        // [n, dim]: FFN input after ffn_norm and norm activation
  const float* gate = nullptr;         // [n, n_ff]: gate_i·x, before the activation (calibrated
                                       // models fire when |act(gate_i·x)| exceeds a threshold)
  const float* activations = nullptr;  // [n, n_ff]: a_i = act(gate_i·x)·(up_i·x)
  int64_t n() const { return static_cast<int64_t>(tokens.size()); }
};

class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // Called after each layer's FFN, layers in order, batches in order.
  virtual void OnFfn(const FfnTrace& trace) = 0;
};

}  // namespace pinfer
