// The second translation unit of pinfer that includes LibTorch headers (after mlp_trainer.cc): it
// reads and writes torch.save's file format, with LibTorch's own pickler.
#include "tools/train_predictor/powerinfer_activations.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/atomic_file.h"
#include "format/output_check.h"
#include "runtime/model/activation_profile.h"
#include "runtime/model/model.h"
#include "tools/train_predictor/powerinfer_layout.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;

// Layer -> path of every activation_<l>.pt in the directory.
absl::StatusOr<std::map<int64_t, std::string>> ListActivationFiles(const std::string& dir) {
  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat(dir, ": cannot list the directory: ", error.message()));
  }
  std::map<int64_t, std::string> files;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kPrefix = "activation_", kSuffix = ".pt";
    if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) continue;
    int64_t layer = -1;
    const std::string_view digits = std::string_view(name).substr(
        kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit) ||
        !absl::SimpleAtoi(std::string(digits), &layer)) {
      continue;
    }
    files.emplace(layer, entry.path().string());
  }
  return files;
}

absl::StatusOr<std::vector<char>> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return bytes;
}

// One layer's counts as doubles; errors name the file.
absl::StatusOr<std::vector<double>> ReadCounts(const std::string& path, int64_t n_ff) {
  absl::StatusOr<std::vector<char>> bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  at::Tensor tensor;
  try {
    c10::IValue value = torch::jit::pickle_load(*bytes);
    if (!value.isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": holds a ", value.tagKind(), ", expected one tensor of counts"));
    }
    tensor = value.toTensor();
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a torch.save'd tensor (", what, ")"));
  }
  if (tensor.dim() != 1 || tensor.size(0) != n_ff) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": a tensor of shape ",
                                                   c10::str(tensor.sizes()), ", expected [", n_ff,
                                                   "] (the model's n_ff)"));
  }
  if (tensor.is_complex() || tensor.scalar_type() == at::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a ", c10::toString(tensor.scalar_type()), " tensor, expected counts"));
  }
  at::Tensor values = tensor.to(at::kDouble).contiguous();
  const double* p = values.data_ptr<double>();
  std::vector<double> counts(p, p + n_ff);
  for (int64_t i = 0; i < n_ff; ++i) {
    if (!std::isfinite(counts[i]) || counts[i] < 0 ||
        counts[i] > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": neuron ", i, " has the count ", counts[i], ", expected a number in [0, 2^31)"));
    }
  }
  return counts;
}

double MeanDensity(const ActivationProfile& profile) {
  double sum = 0;
  for (int64_t l = 0; l < profile.n_layers; ++l) sum += profile.LayerDensity(l);
  return profile.n_layers > 0 ? sum / profile.n_layers : 0.0;
}

}  // namespace

std::string ActivationFilesReport::ToText() const {
  return absl::StrFormat(
      "%s PowerInfer activation statistics: %s %s %s\n"
      "  %d layers x %d neurons, %d tokens%s, mean firing density %.4f\n",
      direction, direction == "import" ? directory : profile_path,
      direction == "import" ? "->" : "->", direction == "import" ? profile_path : directory,
      n_layers, n_ff, tokens,
      tokens_estimated ? " (not in the files: the largest count; --activation-tokens sets it)" : "",
      mean_density);
}

nlohmann::json ActivationFilesReport::ToJson() const {
  return {{"direction", direction},
          {"model", model_path},
          {"directory", directory},
          {"profile", profile_path},
          {"n_layers", n_layers},
          {"n_ff", n_ff},
          {"tokens", tokens},
          {"tokens_estimated", tokens_estimated},
          {"mean_density", mean_density}};
}

absl::StatusOr<ActivationFilesReport> ImportPowerInferActivations(
    const ActivationFilesOptions& options) {
  const std::string profile_path =
      options.profile_path.empty() ? DefaultProfilePath(options.model_path) : options.profile_path;
  {
    const OutputFile outputs[] = {{"-o", profile_path, ArtifactKind::kProfile}};
    const InputFile inputs[] = {{"the model", options.model_path}};
    if (absl::Status s = CheckOutputs(outputs, inputs); !s.ok()) return s;
  }
  if (options.tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--activation-tokens must be positive, got ", options.tokens));
  }
  ModelLoadOptions load;
  load.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model_path, load);
  if (!model.ok()) return model.status();
  const ModelConfig& c = (*model)->config();

  absl::StatusOr<std::map<int64_t, std::string>> files = ListActivationFiles(options.directory);
  if (!files.ok()) return files.status();
  const bool contiguous = !files->empty() && files->begin()->first == 0 &&
                          files->rbegin()->first == static_cast<int64_t>(files->size()) - 1;
  if (static_cast<int64_t>(files->size()) != c.n_layers || !contiguous) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.directory, ": ", files->size(), " activation_<layer>.pt files",
        files->empty()
            ? ""
            : absl::StrCat(" (layers ", files->begin()->first, "..", files->rbegin()->first, ")"),
        ", expected activation_0.pt .. activation_", c.n_layers - 1, ".pt for the model's ",
        c.n_layers, " layers"));
  }
  ActivationProfile profile;
  profile.model_digest = (*model)->file().ContentDigestHex();
  profile.n_layers = c.n_layers;
  profile.n_ff = c.n_ff;
  profile.datasets = {"PowerInfer activation statistics"};
  profile.fire_count.reserve(static_cast<size_t>(c.n_layers * c.n_ff));
  double largest = 0;
  for (const auto& [layer, path] : *files) {
    absl::StatusOr<std::vector<double>> counts = ReadCounts(path, c.n_ff);
    if (!counts.ok()) return counts.status();
    for (double count : *counts) {
      // PowerInfer's counts are whole numbers; a fractional one (a mean?) is rounded.
      profile.fire_count.push_back(static_cast<int32_t>(std::llround(count)));
      largest = std::max(largest, count);
    }
  }
  profile.tokens =
      options.tokens > 0 ? options.tokens : static_cast<int64_t>(std::llround(largest));
  if (options.tokens > 0 && largest > static_cast<double>(options.tokens)) {
    return absl::InvalidArgumentError(absl::StrCat("--activation-tokens ", options.tokens,
                                                   " is below the largest count ", largest, " in ",
                                                   options.directory));
  }
  profile.mean_abs.assign(profile.fire_count.size(), 0.0f);
  profile.threshold.assign(static_cast<size_t>(c.n_layers), 0.0f);

  Metadata provenance;
  provenance.SetString(keys::kProvenanceTool, "pi-train-predictor --import-activations");
  provenance.SetString(keys::kProvenanceToolVersion, PINFER_VERSION);
  if (!options.command_line.empty()) {
    provenance.SetString(keys::kProvenanceArguments, options.command_line);
  }
  provenance.SetString(keys::kProvenanceSource, options.directory);
  provenance.SetBool("profile.tokens_estimated", options.tokens == 0);
  if (absl::Status s = profile.Write(profile_path, provenance); !s.ok()) return s;

  ActivationFilesReport report;
  report.direction = "import";
  report.model_path = options.model_path;
  report.directory = options.directory;
  report.profile_path = profile_path;
  report.n_layers = profile.n_layers;
  report.n_ff = profile.n_ff;
  report.tokens = profile.tokens;
  report.tokens_estimated = options.tokens == 0;
  report.mean_density = MeanDensity(profile);
  return report;
}

absl::StatusOr<ActivationFilesReport> ExportPowerInferActivations(
    const ActivationFilesOptions& options) {
  const std::string profile_path =
      options.profile_path.empty() ? DefaultProfilePath(options.model_path) : options.profile_path;
  ModelLoadOptions load;
  load.require_vocabulary = false;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(options.model_path, load);
  if (!model.ok()) return model.status();
  absl::StatusOr<ActivationProfile> profile = ActivationProfile::ReadFor(profile_path, **model);
  if (!profile.ok()) return profile.status();
  std::error_code error;
  fs::create_directories(options.directory, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.directory, ": cannot create the directory: ", error.message()));
  }
  // Every file is written before any appears (a failure leaves none).
  std::vector<std::unique_ptr<AtomicFile>> files;
  for (int64_t l = 0; l < profile->n_layers; ++l) {
    const std::string path =
        (fs::path(options.directory) / powerinfer::ActivationFileName(l)).string();
    std::vector<int64_t> counts(profile->fire_count.begin() + l * profile->n_ff,
                                profile->fire_count.begin() + (l + 1) * profile->n_ff);
    std::vector<char> bytes;
    try {
      at::Tensor tensor = at::tensor(counts, at::kLong);
      bytes = torch::jit::pickle_save(c10::IValue(tensor));
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(path, ": LibTorch could not serialize: ", e.what()));
    }
    absl::StatusOr<std::unique_ptr<AtomicFile>> file = AtomicFile::Create(path);
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Append(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
        !s.ok()) {
      return s;
    }
    files.push_back(*std::move(file));
  }
  for (std::unique_ptr<AtomicFile>& file : files) {
    if (absl::Status s = file->Commit(); !s.ok()) return s;
  }
  ActivationFilesReport report;
  report.direction = "export";
  report.model_path = options.model_path;
  report.directory = options.directory;
  report.profile_path = profile_path;
  report.n_layers = profile->n_layers;
  report.n_ff = profile->n_ff;
  report.tokens = profile->tokens;
  report.mean_density = MeanDensity(*profile);
  return report;
}

}  // namespace pinfer
