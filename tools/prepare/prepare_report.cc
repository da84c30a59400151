#include "tools/prepare/prepare_report.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace pinfer {

std::string ShellWord(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("_./+=:-").find(c) != std::string_view::npos;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

namespace {

// The flags of pi-run and pi-server that select the prepared artifacts. They are named even when
// they lie beside the model (where the runtime would find them), so the command is exact.
std::string ArtifactFlags(const PrepareReport& report) {
  std::string flags = absl::StrCat("-m ", ShellWord(report.model_path));
  if (report.calibrated) absl::StrAppend(&flags, " --profile ", ShellWord(report.profile_path));
  absl::StrAppend(&flags, " --predictor ", ShellWord(report.predictor_path));
  if (!report.plan_path.empty()) absl::StrAppend(&flags, " --plan ", ShellWord(report.plan_path));
  if (report.plan_path.empty() && report.plan_off) absl::StrAppend(&flags, " --plan none");
  return flags;
}

}  // namespace

std::string PrepareReport::RunCommand() const {
  return absl::StrCat(ShellWord(program_dir + "pi-run"), " ", ArtifactFlags(*this),
                      " -p \"Once upon a time\"");
}

std::string PrepareReport::ServerCommand() const {
  return absl::StrCat(ShellWord(program_dir + "pi-server"), " ", ArtifactFlags(*this),
                      " --port 8080");
}

std::string StageLine(const StageResult& stage, int index, int count) {
  std::string line = absl::StrFormat("[%d/%d] %s: ", index, count, stage.name);
  if (stage.status == "done") {
    absl::StrAppendFormat(&line, "done in %.2f s", stage.seconds);
  } else {
    absl::StrAppend(&line, stage.status);
  }
  if (!stage.reason.empty()) absl::StrAppend(&line, " (", stage.reason, ")");
  if (!stage.summary.empty()) absl::StrAppend(&line, ": ", stage.summary);
  return line;
}

std::string PrepareReport::ToText() const {
  size_t name_width = 5, status_width = 6;
  for (const StageResult& s : stages) {
    name_width = std::max(name_width, s.name.size());
    status_width = std::max(status_width, s.status.size());
  }
  std::string out = absl::StrFormat("%-*s  %-*s  %8s  %s\n", name_width, "stage", status_width,
                                    "status", "seconds", "result");
  for (const StageResult& s : stages) {
    absl::StrAppendFormat(&out, "%-*s  %-*s  %8.2f  %s\n", name_width, s.name, status_width,
                          s.status, s.seconds, s.summary);
  }
  absl::StrAppendFormat(&out, "total %.2f s\n\nfiles:\n", seconds);
  for (const StageResult& s : stages) {
    for (const std::string& file : s.outputs) absl::StrAppend(&out, "  ", file, "\n");
  }
  absl::StrAppend(&out, "\nrun:\n  ", RunCommand(), "\nserve:\n  ", ServerCommand(), "\n");
  return out;
}

nlohmann::json PrepareReport::ToJson() const {
  nlohmann::json stage_list = nlohmann::json::array();
  for (const StageResult& s : stages) {
    stage_list.push_back({{"stage", s.name},
                          {"status", s.status},
                          {"reason", s.reason},
                          {"outputs", s.outputs},
                          {"summary", s.summary},
                          {"figures", s.figures},
                          {"seconds", s.seconds}});
  }
  return {{"model", model_path},
          {"profile", profile_path},
          {"samples", samples_path},
          {"predictor", predictor_path},
          {"plan", plan_path.empty() ? nlohmann::json() : nlohmann::json(plan_path)},
          {"stages", stage_list},
          {"seconds", seconds},
          {"pi_run", RunCommand()},
          {"pi_server", ServerCommand()}};
}

}  // namespace pinfer
