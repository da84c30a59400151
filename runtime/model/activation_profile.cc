#include "runtime/model/activation_profile.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/pi_file.h"
#include "format/pi_writer.h"
#include "runtime/model/artifact_file.h"
#include "runtime/model/model.h"
#include "runtime/model/model_config.h"

namespace pinfer {

std::string DefaultProfilePath(const std::string& model_path) {
  std::string base = model_path;
  if (base.ends_with(".pi")) base.resize(base.size() - 3);
  return base + ".profile.pi";
}

double ActivationProfile::LayerDensity(int64_t layer) const {
  if (tokens <= 0 || n_ff <= 0) return 0.0;
  double fired = 0;
  for (int64_t i = 0; i < n_ff; ++i) fired += fire_count[layer * n_ff + i];
  return fired / (static_cast<double>(tokens) * n_ff);
}

absl::Status ActivationProfile::Validate() const {
  if (n_layers <= 0 || n_ff <= 0) {
    return absl::InvalidArgumentError("profile has no layers or neurons");
  }
  const size_t cells = static_cast<size_t>(n_layers * n_ff);
  if (fire_count.size() != cells || mean_abs.size() != cells ||
      threshold.size() != static_cast<size_t>(n_layers)) {
    return absl::InvalidArgumentError("profile arrays do not match n_layers x n_ff");
  }
  if (tokens < 0) return absl::InvalidArgumentError("profile has a negative token count");
  for (float t : threshold) {
    // A NaN, infinite or negative tau would make every neuron fire, or none, silently.
    if (!std::isfinite(t) || t < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("a firing threshold of ", t, " is not a finite number >= 0"));
    }
  }
  for (int32_t c : fire_count) {
    if (c < 0 || c > tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("a fire count of ", c, " is outside [0, ", tokens, " tokens]"));
    }
  }
  return absl::OkStatus();
}

absl::Status ActivationProfile::Write(const std::string& path, const Metadata& extra) const {
  if (absl::Status s = Validate(); !s.ok()) return s;
  Metadata m = extra;
  m.SetString(keys::kModelDigest, model_digest);
  m.SetInt("profile.tokens", tokens);
  m.SetInt("profile.context", context);
  m.SetStringArray("profile.datasets", datasets);
  m.SetFloat("profile.target_sparsity", target_sparsity);
  const uint64_t L = static_cast<uint64_t>(n_layers), F = static_cast<uint64_t>(n_ff);
  std::vector<TensorData> tensors = {
      MakeTensor("ffn.fire_count", {L, F}, std::span<const int32_t>(fire_count)),
      MakeTensor("ffn.mean_abs", {L, F}, std::span<const float>(mean_abs)),
      MakeTensor("ffn.threshold", {L}, std::span<const float>(threshold)),
  };
  return WritePiFile(path, ArtifactKind::kProfile, std::move(m), tensors);
}

absl::StatusOr<ActivationProfile> ActivationProfile::Read(
    const std::string& path, std::optional<std::string> expected_model_digest) {
  absl::StatusOr<OpenedArtifact> opened =
      OpenArtifact(path, ArtifactKind::kProfile, expected_model_digest, "was made for");
  if (!opened.ok()) return opened.status();
  const PiFile& file = *opened->file;
  ActivationProfile p;
  p.model_digest = opened->model_digest;
  absl::StatusOr<int64_t> tokens = file.GetInt("profile.tokens");
  if (!tokens.ok()) return tokens.status();
  p.tokens = *tokens;
  p.context = file.GetInt("profile.context").value_or(0);
  p.datasets =
      file.metadata().GetStringArray("profile.datasets").value_or(std::vector<std::string>{});
  p.target_sparsity = file.GetFloat("profile.target_sparsity").value_or(-1.0);

  absl::StatusOr<const TensorInfo*> counts = file.Get("ffn.fire_count");
  if (!counts.ok()) return counts.status();
  if ((*counts)->shape.size() != 2 || (*counts)->dtype != DType::kI32) {
    return absl::DataLossError(absl::StrCat(path, ": ffn.fire_count must be i32 [n_layers, n_ff]"));
  }
  p.n_layers = static_cast<int64_t>((*counts)->shape[0]);
  p.n_ff = static_cast<int64_t>((*counts)->shape[1]);
  const uint64_t cells_shape[] = {(*counts)->shape[0], (*counts)->shape[1]};
  const uint64_t layers_shape[] = {(*counts)->shape[0]};
  absl::StatusOr<const TensorInfo*> mean_abs = file.GetChecked("ffn.mean_abs", cells_shape);
  if (!mean_abs.ok()) return mean_abs.status();
  absl::StatusOr<const TensorInfo*> threshold = file.GetChecked("ffn.threshold", layers_shape);
  if (!threshold.ok()) return threshold.status();
  if ((*mean_abs)->dtype != DType::kF32 || (*threshold)->dtype != DType::kF32) {
    return absl::DataLossError(absl::StrCat(path, ": ffn.mean_abs and ffn.threshold must be f32"));
  }
  const size_t cells = static_cast<size_t>(p.n_layers * p.n_ff);
  p.fire_count.resize(cells);
  p.mean_abs.resize(cells);
  p.threshold.resize(static_cast<size_t>(p.n_layers));
  std::memcpy(p.fire_count.data(), file.Data(**counts).data(), cells * 4);
  std::memcpy(p.mean_abs.data(), file.Data(**mean_abs).data(), cells * 4);
  std::memcpy(p.threshold.data(), file.Data(**threshold).data(), p.threshold.size() * 4);
  if (absl::Status s = p.Validate(); !s.ok()) return file.Annotate(s);
  return p;
}

absl::StatusOr<ActivationProfile> ActivationProfile::ReadFor(const std::string& path,
                                                             const Model& model) {
  absl::StatusOr<ActivationProfile> p = Read(path, model.file().ContentDigestHex());
  if (!p.ok()) return p.status();
  if (p->n_layers != model.n_layers()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a profile of ", p->n_layers,
                                                   " layers, the model has ", model.n_layers()));
  }
  return p;
}

}  // namespace pinfer
