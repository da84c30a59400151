// libFuzzer target: config.json of HF checkpoints (ReadJsonFile, ParseHfConfig). An accepted config
// that passes ModelConfig::Validate() (what the converter checks next) must be runnable
// (fuzz_checks.h) and survive the trip through model.pi metadata that the converter and the
// loader make (ToMetadata, FromMetadata).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_checks.h"
#include "tests/fuzz/fuzz_file.h"
#include "tools/convert/hf_config.h"
#include "tools/convert/json_fields.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pinfer;
  const std::string path = fuzz::WriteScratchFile("config.json", {data, size});
  absl::StatusOr<nlohmann::json> json = ReadJsonFile(path);
  if (!json.ok()) return fuzz::Rejected(json.status());
  absl::StatusOr<HfConfig> hf = ParseHfConfig(*json, path);
  if (!hf.ok()) return fuzz::Rejected(hf.status());
  if (absl::Status s = hf->config.Validate(); !s.ok()) return fuzz::Rejected(s);
  fuzz::RequireRunnableConfig(hf->config);
  Metadata m;
  hf->config.ToMetadata(m);
  absl::StatusOr<ModelConfig> back = ModelConfig::FromMetadata(m);
  fuzz::Require(back.ok(), "a converted config does not load back from its metadata");
  fuzz::Require(back->ffn_act == hf->config.ffn_act, "the FFN activation changes through metadata");
  return 0;
}
