#include "bench/synth/locality.h"

#include <cmath>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/synth/synth_random.h"
#include "format/strings.h"

namespace pinfer::synth {
namespace {

constexpr std::string_view kPowerLaw = "power-law:";

absl::Status LocalityError(std::string_view text, std::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("--locality '", Sv(text), "': ", Sv(reason)));
}

}  // namespace

std::string LocalitySpec::ToString() const {
  std::string text = absl::StrFormat("power-law:alpha=%g,hot=%g,density=%g", alpha, hot, density);
  if (latent > 0) absl::StrAppendFormat(&text, ",latent=%d,noise=%g", latent, noise);
  return text;
}

absl::StatusOr<LocalitySpec> ParseLocality(std::string_view text) {
  if (!text.starts_with(kPowerLaw)) {
    return LocalityError(text, "expected power-law:alpha=A,hot=H,density=D");
  }
  LocalitySpec spec;
  double latent = 0;
  bool seen[5] = {false, false, false, false, false};
  const std::string_view body = text.substr(kPowerLaw.size());
  if (body.empty()) return spec;
  for (absl::string_view item : absl::StrSplit(Sv(body), ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    const struct {
      const char* key;
      double* value;
    } fields[] = {{"alpha", &spec.alpha},
                  {"hot", &spec.hot},
                  {"density", &spec.density},
                  {"latent", &latent},
                  {"noise", &spec.noise}};
    bool known = false;
    for (int i = 0; i < 5; ++i) {
      if (kv.first != fields[i].key) continue;
      known = true;
      if (seen[i]) return LocalityError(text, absl::StrCat(fields[i].key, " is given twice"));
      seen[i] = true;
      if (!absl::SimpleAtod(kv.second, fields[i].value) || !std::isfinite(*fields[i].value)) {
        return LocalityError(text,
                             absl::StrCat(fields[i].key, " needs a number, got '", kv.second, "'"));
      }
    }
    if (!known) {
      return LocalityError(
          text, absl::StrCat("unknown key '", kv.first,
                             "' (expected alpha, hot, density, latent and noise)"));
    }
  }
  if (spec.alpha < 0 || spec.alpha > 16) {
    return LocalityError(text, absl::StrCat("alpha must be in [0, 16], got ", spec.alpha));
  }
  if (!(spec.hot > 0 && spec.hot < 1)) {
    return LocalityError(text, absl::StrCat("hot must be in (0, 1), got ", spec.hot));
  }
  if (!(spec.density > 0 && spec.density < 1)) {
    return LocalityError(text, absl::StrCat("density must be in (0, 1), got ", spec.density));
  }
  if (latent < 0 || latent > 4096 || latent != std::floor(latent)) {
    return LocalityError(text,
                         absl::StrCat("latent must be a whole number in [0, 4096], got ", latent));
  }
  spec.latent = static_cast<int64_t>(latent);
  if (!(spec.noise >= 0 && spec.noise < 1)) {
    return LocalityError(text, absl::StrCat("noise must be in [0, 1), got ", spec.noise));
  }
  if (spec.noise > 0 && spec.latent == 0) {
    return LocalityError(text, "noise needs latent directions (latent=K)");
  }
  return spec;
}

double FiringLaw::Shape(int64_t rank) const {
  const double r = (static_cast<double>(rank) + 0.5) / static_cast<double>(n_ff_);
  return r < spec_.hot ? 1.0 : std::pow(r / spec_.hot, -spec_.alpha);
}

absl::StatusOr<FiringLaw> FiringLaw::Solve(const LocalitySpec& spec, int64_t n_ff) {
  FiringLaw law;
  law.spec_ = spec;
  law.n_ff_ = n_ff;
  double sum = 0;
  for (int64_t k = 0; k < n_ff; ++k) sum += law.Shape(k);
  law.hot_probability_ = spec.density * static_cast<double>(n_ff) / sum;
  if (law.hot_probability_ > kMaxFiringProbability) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--locality '%s': density %g is out of reach with alpha=%g and hot=%g: the hot neurons "
        "would have to fire with probability %.3g (at most %g); lower the density, or raise hot "
        "or lower alpha",
        spec.ToString(), spec.density, spec.alpha, spec.hot, law.hot_probability_,
        kMaxFiringProbability));
  }
  return law;
}

double FiringLaw::Probability(int64_t rank) const { return hot_probability_ * Shape(rank); }

int64_t FiringLaw::HotCount() const {
  int64_t count = 0;
  while (count < n_ff_ &&
         (static_cast<double>(count) + 0.5) / static_cast<double>(n_ff_) < spec_.hot) {
    ++count;
  }
  return count;
}

std::vector<double> FiringLaw::LayerProbabilities(uint64_t seed, int64_t layer) const {
  // Fisher-Yates with a counter-based stream, so the permutation depends on (seed, layer) only.
  std::vector<int64_t> neuron_of_rank(static_cast<size_t>(n_ff_));
  std::iota(neuron_of_rank.begin(), neuron_of_rank.end(), 0);
  RandomStream stream(StreamKey(seed, "ffn.rank_permutation", static_cast<uint64_t>(layer)));
  for (int64_t i = n_ff_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(stream.NextU64()) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(neuron_of_rank[static_cast<size_t>(i)], neuron_of_rank[static_cast<size_t>(j)]);
  }
  std::vector<double> probability(static_cast<size_t>(n_ff_));
  for (int64_t k = 0; k < n_ff_; ++k) {
    probability[static_cast<size_t>(neuron_of_rank[static_cast<size_t>(k)])] = Probability(k);
  }
  return probability;
}

}  // namespace pinfer::synth
