// pi-inspect: show a .pi artifact's header, metadata and tensor table; --verify checks every
// tensor checksum and the exit status says whether the file is sound.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "runtime/common/cli_common.h"
#include "runtime/common/cli_flags.h"
#include "tools/convert/inspect.h"

namespace pinfer {
namespace {

constexpr char kProgram[] = "pi-inspect";

int Main(int argc, char** argv) {
  CLI::App app{
      "Show a .pi artifact: header, metadata (long arrays abbreviated), tensor table.\n"
      "With --verify, check every tensor's checksum and, for a model, that the runtime can load "
      "it (every header value against the tensors and plausible ranges); the exit status is 0 "
      "only for a sound file.\n\n"
      "Examples:\n"
      "  pi-inspect stories260K.pi\n"
      "  pi-inspect --verify stories260K.pi\n"
      "  pi-inspect --json stories260K.pi | jq '.tensors[] | select(.dtype == \"q8_0\") | .name'",
      kProgram};
  std::string path;
  InspectOptions options;
  bool quiet = false;
  app.add_option("file", path, ".pi file")->required();
  app.add_flag("--verify", options.verify, "check every tensor checksum");
  app.add_flag("--json", options.json, "print the report as JSON");
  app.add_flag("-q,--quiet", quiet, "no progress output");
  AddVersionFlag(app, kProgram);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  options.progress = !quiet && !options.json;
  absl::StatusOr<InspectReport> report = InspectPiFile(path, options);
  if (!report.ok()) return ReportError(kProgram, report.status());
  std::fputs(report->text.c_str(), stdout);
  if (!report->model_error.empty()) {
    return ReportError(kProgram, absl::InvalidArgumentError(report->model_error));
  }
  if (!report->sound()) {
    return ReportError(
        kProgram, absl::DataLossError(
                      absl::StrCat(report->failed.size(), " of ", report->verified,
                                   " tensors fail their checksum; first: ", report->first_error)));
  }
  return 0;
}

}  // namespace
}  // namespace pinfer

int main(int argc, char** argv) { return pinfer::Main(argc, argv); }
