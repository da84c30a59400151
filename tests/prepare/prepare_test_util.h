// What the pi-prepare tests share: the relu-llama-260k source and the settings that make a run
// fast and deterministic, snapshots of a directory's files, and reading the --json report.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer::prepare_test {

std::string Source();     // models/relu-llama-260k/model_q80.bin
std::string Tokenizer();  // models/relu-llama-260k/tok1024.bin
std::string Dataset();    // tests/data/text/tinystories_valid_head.txt

// The conversion flags relu-llama-260k needs (its activations), as pi-convert takes them.
std::vector<std::string> ConvertFlags();
// pi-prepare of relu-llama-260k into `dir`: small, deterministic (-t 1, a seed), with `extra`.
// (The same settings as the separate stages of pi_prepare_test.cc.)
std::vector<std::string> PrepareArgs(const std::string& dir,
                                     const std::vector<std::string>& extra = {},
                                     const std::string& max_tokens = "1000");

// Every file of a directory: its bytes and modification time.
struct FileState {
  std::string bytes;
  std::filesystem::file_time_type mtime;
  bool operator==(const FileState&) const = default;
};
std::map<std::string, FileState> Snapshot(const std::string& dir);
// Names in `dir` that look like a temporary file of an atomic write ("*.tmp.XXXXXX").
std::vector<std::string> TemporaryFiles(const std::string& dir);

// stage name -> status ("done", "skipped") of a --json report.
std::map<std::string, std::string> StageStatuses(const nlohmann::json& report);

}  // namespace pinfer::prepare_test
