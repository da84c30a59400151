#include "tests/place/tiny_profile.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "runtime/text/tokenizer.h"

namespace pinfer::testing_support {
namespace {

class FiringCounter : public ForwardObserver {
 public:
  explicit FiringCounter(ActivationProfile& profile)
      : profile_(profile), abs_sum_(profile.fire_count.size(), 0.0) {}

  void OnFfn(const FfnTrace& t) override {
    for (int64_t token = 0; token < t.n(); ++token) {
      const float* a = t.activations + token * t.n_ff;
      for (int64_t i = 0; i < t.n_ff; ++i) {
        const size_t cell = static_cast<size_t>(t.layer * t.n_ff + i);
        if (a[i] != 0.0f) {
          ++profile_.fire_count[cell];
        } else {
          ++zeros_;
        }
        abs_sum_[cell] += std::fabs(a[i]);
      }
      activations_ += t.n_ff;
    }
  }
  double AbsSum(size_t cell) const { return abs_sum_[cell]; }
  double ZeroFraction() const {
    return activations_ > 0 ? static_cast<double>(zeros_) / static_cast<double>(activations_) : 0;
  }

 private:
  ActivationProfile& profile_;
  std::vector<double> abs_sum_;
  int64_t zeros_ = 0, activations_ = 0;
};

}  // namespace

absl::StatusOr<TextProfile> ProfileOnText(const std::string& model_path,
                                          const std::string& text_path, int chunks,
                                          int chunk_tokens) {
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(model_path);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Create(*(*model)->vocabulary());
  if (!tokenizer.ok()) return tokenizer.status();
  std::ifstream in(text_path);
  if (!in) return absl::NotFoundError(absl::StrCat(text_path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  const std::vector<int32_t> tokens = tokenizer->Encode(text.str(), /*add_special=*/false);
  const int64_t n = chunk_tokens > 0 ? chunk_tokens : c.context_length;
  if (static_cast<int64_t>(tokens.size()) < chunks * (n - 1)) {
    return absl::InvalidArgumentError(absl::StrCat(text_path, ": too short for the profile"));
  }

  TextProfile out;
  ActivationProfile& p = out.profile;
  p.model_digest = (*model)->file().ContentDigestHex();
  p.n_layers = c.n_layers;
  p.n_ff = c.n_ff;
  p.context = n;
  p.datasets = {text_path.substr(text_path.find_last_of('/') + 1)};
  p.fire_count.assign(static_cast<size_t>(c.n_layers * c.n_ff), 0);
  p.mean_abs.assign(p.fire_count.size(), 0.0f);
  p.threshold.assign(static_cast<size_t>(c.n_layers), 0.0f);

  Executor executor(**model);
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = n});
  if (!session.ok()) return session.status();
  FiringCounter counter(p);
  (*session)->SetObserver(&counter);
  for (int chunk = 0; chunk < chunks; ++chunk) {
    std::vector<int32_t> batch = {tokenizer->bos()};
    const auto first = tokens.begin() + chunk * (n - 1);
    batch.insert(batch.end(), first, first + (n - 1));
    (*session)->Reset();
    absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(batch, Logits::kNone);
    if (!logits.ok()) return logits.status();
    p.tokens += n;
  }
  for (size_t cell = 0; cell < p.mean_abs.size(); ++cell) {
    p.mean_abs[cell] = static_cast<float>(counter.AbsSum(cell) / static_cast<double>(p.tokens));
  }
  out.zero_fraction = counter.ZeroFraction();
  if (absl::Status s = p.Validate(); !s.ok()) return s;
  return out;
}

}  // namespace pinfer::testing_support
