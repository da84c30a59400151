// The pi-synth program: help, one-line errors for bad flags with no file left behind, and bounded
// memory (the model is streamed, never held).
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/synth/synth_test_util.h"

extern char** environ;

namespace pinfer::synth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
  long max_rss_kib = 0;
};

// Runs pi-synth with `args`, capturing stdout and stderr into files of `scratch`.
RunResult RunPiSynth(const ScratchDir& scratch, std::vector<std::string> args) {
  args.insert(args.begin(), PI_SYNTH_BINARY);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string out_path =
      scratch.dir().parent_path() / (scratch.dir().filename().string() + ".out");
  const std::string err_path =
      scratch.dir().parent_path() / (scratch.dir().filename().string() + ".err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  RunResult result;
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    ADD_FAILURE() << "cannot run " << argv[0];
    return result;
  }
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  struct rusage usage {};
  wait4(pid, &status, 0, &usage);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.max_rss_kib = usage.ru_maxrss;
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  return result;
}

TEST(PiSynthCliTest, HelpHasExamples) {
  ScratchDir scratch("cli_help");
  RunResult r = RunPiSynth(scratch, {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Examples:"));
  EXPECT_THAT(r.out, HasSubstr("pi-synth --shape llama-7b --dtype q4_0"));
  EXPECT_THAT(r.out, HasSubstr("falcon-40b"));
  EXPECT_THAT(r.out, HasSubstr("opt-175b"));
  EXPECT_THAT(r.out, HasSubstr("--arch"));
}

TEST(PiSynthCliTest, BadFlagsGetOneClearLineAndLeaveNoFile) {
  ScratchDir scratch("cli_errors");
  const std::string out = scratch.Path("m.pi");
  const std::string shape = "custom:d=64,ff=64,layers=1,heads=2,vocab=300";
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--shape", "llama-8b", "-o", out}, "--shape 'llama-8b': unknown shape"},
      {{"--shape", "custom:d=64,ff=64", "-o", out}, "layers is missing"},
      {{"--shape", shape, "--locality", "zipf", "-o", out},
       "--locality 'zipf': expected power-law:alpha=A,hot=H,density=D"},
      {{"--shape", shape, "--locality", "power-law:density=1.5", "-o", out},
       "density must be in (0, 1), got 1.5"},
      {{"--shape", shape, "--locality", "power-law:alpha=3,hot=0.01,density=0.9", "-o", out},
       "density 0.9 is out of reach"},
      {{"--shape", shape, "--dtype", "q5_k", "-o", out}, "unknown weight dtype 'q5_k'"},
      {{"--shape", shape, "--ffn-act", "silu", "-o", out},
       "--ffn-act 'silu': expected fatrelu, relu or gelu"},
      {{"--shape", shape, "--ffn-act", "gelu", "-o", out},
       "--ffn-act gelu is for the gate-less FFNs of opt and falcon"},
      {{"--shape", shape, "--arch", "gpt2", "-o", out},
       "--arch 'gpt2': expected llama, opt or falcon"},
      {{"--shape", "custom:d=64,ff=64,layers=1,heads=2,kv_heads=1,vocab=300", "--arch", "opt", "-o",
        out},
       "--arch opt has no grouped KV: kv_heads 1 must equal heads 2"},
      {{"--shape", "falcon-40b", "--arch", "opt", "-o", out}, "--arch opt has no grouped KV"},
      {{"--shape", shape, "--arch", "opt", "-o", out, "--gguf", scratch.Path("m.gguf")},
       "llama architecture only, not 'opt'"},
      {{"--shape", "falcon-7b", "-o", out, "--gguf", scratch.Path("m.gguf")},
       "llama architecture only, not 'falcon'"},
      {{"--shape", shape, "-o", scratch.Path("no/such/dir/m.pi")}, "no/such/dir/m.pi"},
      {{"--shape", shape, "-o", out, "--gguf", scratch.Path("none/m.gguf")}, "none/m.gguf"},
      {{"--shape", shape, "-o", out, "--tokenizer", scratch.Path("tok.bin")},
       "tok.bin: no such file"},
      // Hundreds of TiB: refused before any byte is written.
      {{"--shape", "custom:d=65536,ff=1048576,layers=1024,heads=512", "-o", out, "--gguf",
        scratch.Path("m.gguf")},
       "not enough free space: the output needs"},
  };
  for (const auto& [args, message] : cases) {
    SCOPED_TRACE(message);
    RunResult r = RunPiSynth(scratch, args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, StartsWith("pi-synth: error: "));
    EXPECT_THAT(r.err, HasSubstr(message));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(std::filesystem::is_empty(scratch.dir()));
  }
  // A small OPT through the program: the report names its architecture and activation.
  RunResult opt =
      RunPiSynth(scratch, {"--shape", shape, "--arch", "opt", "-o", out, "--json", "-q"});
  ASSERT_EQ(opt.exit_code, 0) << opt.err;
  EXPECT_THAT(opt.out, HasSubstr("\"architecture\": \"opt\""));
  EXPECT_THAT(opt.out, HasSubstr("\"ffn_act\": \"relu\""));
  std::filesystem::remove(out);
  // Missing required flags: CLI11's own message, still an error exit.
  EXPECT_NE(RunPiSynth(scratch, {"-o", out}).exit_code, 0);
  EXPECT_TRUE(std::filesystem::is_empty(scratch.dir()));
}

TEST(PiSynthCliTest, StreamsAModelMuchLargerThanItsMemory) {
  ScratchDir scratch("cli_memory");
  const std::string out = scratch.Path("m.pi"), gguf = scratch.Path("m.gguf");
  // 2 x 57 MiB of f16, generated and written with a bounded working set.
  RunResult r = RunPiSynth(scratch, {"--shape", "custom:d=1024,ff=2816,layers=2,heads=8,vocab=2000",
                                     "--dtype", "f16", "-o", out, "--gguf", gguf, "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pi-synth: wrote " + out));
  EXPECT_THAT(r.out, HasSubstr("\"hot_probability\""));
  const uint64_t written = std::filesystem::file_size(out) + std::filesystem::file_size(gguf);
  EXPECT_GT(written, 110ull << 20);
  // Code, the vocabulary and 16 MiB generation chunks: far below what was written.
  EXPECT_LT(static_cast<uint64_t>(r.max_rss_kib) * 1024, 48ull << 20)
      << "peak RSS " << r.max_rss_kib << " KiB for " << written << " bytes written";
  std::printf("pi-synth wrote %.1f MiB with a peak RSS of %.1f MiB\n", written / 1048576.0,
              r.max_rss_kib / 1024.0);
}

}  // namespace
}  // namespace pinfer::synth::testing
