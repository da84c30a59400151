// A selector that misses half of what another one selects (every other neuron of each token's
// set): what --check must catch. Shared by the sparse and hybrid tests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "runtime/exec/neuron_selector.h"

namespace pinfer::test {

class HalfSelector : public NeuronSelector {
 public:
  explicit HalfSelector(std::shared_ptr<NeuronSelector> inner) : inner_(std::move(inner)) {}
  std::string_view name() const override { return "half"; }
  uint64_t SelectBytes(int64_t) const override { return 0; }
  absl::Status Select(int64_t layer, const float* x, int64_t n, FfnWorkspace& ws,
                      SelectedNeurons& out) override {
    if (absl::Status s = inner_->Select(layer, x, n, ws, all_); !s.ok()) return s;
    out.Clear();
    for (int64_t t = 0; t < n; ++t) {
      const std::span<const int32_t> ids = all_.Token(t);
      for (size_t i = 0; i < ids.size(); i += 2) out.ids.push_back(ids[i]);
      out.offsets.push_back(static_cast<int64_t>(out.ids.size()));
    }
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<NeuronSelector> inner_;
  SelectedNeurons all_;
};

}  // namespace pinfer::test
