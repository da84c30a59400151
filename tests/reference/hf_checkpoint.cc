// LoadHfCheckpoint: config.json and the safetensors weights, through pinfer's bounds-checked
// safetensors parser (pinfer_convert_parsers, SentencePiece-free).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "tests/reference/torch_reference.h"
#include "tools/convert/safetensors_file.h"

namespace pinfer::reference {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot be read");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

torch::Dtype TorchDtype(const std::string& dtype, const std::string& where) {
  if (dtype == "F32") return torch::kFloat32;
  if (dtype == "F16") return torch::kFloat16;
  if (dtype == "BF16") return torch::kBFloat16;
  throw std::runtime_error(where + ": dtype " + dtype + " is not F32, F16 or BF16");
}

void AddTensors(const fs::path& path, HfCheckpoint& checkpoint) {
  std::vector<uint8_t> bytes = ReadBytes(path);
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Parse(bytes, path.string());
  if (!file.ok()) throw std::runtime_error(std::string(file.status().message()));
  for (const auto& [name, t] : file->tensors()) {
    std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
    const torch::Dtype dtype = TorchDtype(t.dtype, path.string() + " " + name);
    // from_blob does not own the bytes: the copy to double does.
    torch::Tensor raw = torch::from_blob(const_cast<uint8_t*>(file->Data(t).data()), shape,
                                         torch::TensorOptions().dtype(dtype));
    checkpoint.tensors[name] = raw.to(torch::kFloat64).clone();
  }
}

}  // namespace

const torch::Tensor& HfCheckpoint::at(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error("the checkpoint has no tensor " + name);
  return it->second;
}

HfCheckpoint LoadHfCheckpoint(const std::string& dir) {
  HfCheckpoint checkpoint;
  const fs::path config_path = fs::path(dir) / "config.json";
  const std::vector<uint8_t> config = ReadBytes(config_path);
  checkpoint.config = nlohmann::json::parse(config.begin(), config.end(), nullptr, false);
  if (checkpoint.config.is_discarded() || !checkpoint.config.is_object()) {
    throw std::runtime_error(config_path.string() + ": is not a JSON object");
  }
  // model.safetensors, or every shard (the index only says which shard holds which tensor).
  int files = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") {
      AddTensors(e.path(), checkpoint);
      ++files;
    }
  }
  if (files == 0) throw std::runtime_error(dir + ": has no .safetensors file");
  return checkpoint;
}

}  // namespace pinfer::reference
