#include "tests/prepare/prepare_test_util.h"

#include "absl/strings/str_cat.h"
#include "tests/convert/test_util.h"

namespace pinfer::prepare_test {

namespace fs = std::filesystem;

std::string Source() { return testing::RepoPath("models/relu-llama-260k/model_q80.bin"); }
std::string Tokenizer() { return testing::RepoPath("models/relu-llama-260k/tok1024.bin"); }
std::string Dataset() { return testing::RepoPath("tests/data/text/tinystories_valid_head.txt"); }

std::vector<std::string> ConvertFlags() {
  return {"--tokenizer",       Tokenizer(),  "--ffn-act",
          "shifted_relu:0.25", "--norm-act", "shifted_relu:1.0"};
}

std::vector<std::string> PrepareArgs(const std::string& dir, const std::vector<std::string>& extra,
                                     const std::string& max_tokens) {
  std::vector<std::string> args = {"-m", Source()};
  for (const std::string& flag : ConvertFlags()) args.push_back(flag);
  args.push_back("--max-tokens");
  args.push_back(max_tokens);
  for (const char* flag : {"--rank", "32", "--epochs", "2", "--seed", "3", "-t", "1", "-o"}) {
    args.push_back(flag);
  }
  args.push_back(dir);
  args.push_back("--dataset");
  args.push_back(Dataset());
  for (const std::string& flag : extra) args.push_back(flag);
  return args;
}

std::map<std::string, FileState> Snapshot(const std::string& dir) {
  std::map<std::string, FileState> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::vector<uint8_t> bytes = testing::ReadFileBytes(entry.path().string());
    files[entry.path().filename().string()] = {std::string(bytes.begin(), bytes.end()),
                                               entry.last_write_time()};
  }
  return files;
}

std::vector<std::string> TemporaryFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) names.push_back(name);
  }
  return names;
}

std::map<std::string, std::string> StageStatuses(const nlohmann::json& report) {
  std::map<std::string, std::string> statuses;
  for (const nlohmann::json& stage : report.at("stages")) {
    statuses[stage.at("stage").get<std::string>()] = stage.at("status").get<std::string>();
  }
  return statuses;
}

}  // namespace pinfer::prepare_test
