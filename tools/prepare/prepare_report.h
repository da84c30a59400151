// What pi-prepare reports: per stage whether it ran or was skipped (and why), its output and a
// one-line result; a summary table; and the pi-run / pi-server commands that use the artifacts.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace pinfer {

struct StageResult {
  std::string name;                  // "convert", "profile", "train-predictor", "place"
  std::string status;                // "done" or "skipped"
  std::string reason;                // why it ran or was skipped (one phrase)
  std::vector<std::string> outputs;  // files the stage owns
  std::string summary;               // one line: size, density, recall, coverage
  nlohmann::json figures;            // the same, as numbers
  double seconds = 0;                // 0 when skipped
};

struct PrepareReport {
  std::string program_dir;  // prefix of the programs in the commands ("" or ".../")
  std::string model_path;
  std::string profile_path;
  std::string samples_path;
  std::string predictor_path;
  std::string plan_path;  // "" without --vram
  bool plan_off =
      false;  // no plan made, but one lies beside the model: the commands say --plan none
  bool calibrated = false;  // silu/gelu: pi-run reads the thresholds from the profile
  std::vector<StageResult> stages;
  double seconds = 0;

  std::string RunCommand() const;     // pi-run -m ... -p "..."
  std::string ServerCommand() const;  // pi-server -m ...
  std::string ToText() const;         // the summary table and the commands
  nlohmann::json ToJson() const;
};

// "path" as one shell word (single-quoted when it holds anything but [A-Za-z0-9_./+=:-]).
std::string ShellWord(const std::string& word);
// "[2/4] profile: done in 1.20 s: out/x.profile.pi, 20000 tokens, density 9.1%": the line each
// stage prints when it ends.
std::string StageLine(const StageResult& stage, int index, int count);

}  // namespace pinfer
