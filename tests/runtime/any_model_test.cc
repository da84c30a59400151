// -m of any model (runtime/app/model_source.h): pi-run and pi-server take the bundled stories260K
// as a GGUF and as a llama2.c checkpoint, convert it once into a cached .pi (beside it, or in
// $XDG_CACHE_HOME/pinfer when its folder is read-only), reuse the cache while the source is
// unchanged and convert a touched one again; bad sources get one line and leave no cache.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/strings.h"
#include "gtest/gtest.h"
#include "runtime/app/runtime_flags.h"
#include "runtime/app/server/http_server.h"
#include "tests/convert/hf_fixture.h"
#include "tests/runtime/test_models.h"
#include "tests/server/server_harness.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

// What every run generates: greedy, one thread, so that texts compare.
const std::vector<std::string> kGreedy = {"-p", "Once upon a time", "-n", "24", "--temp", "0", "-t",
                                          "1"};

std::vector<std::string> With(std::vector<std::string> args,
                              const std::vector<std::string>& more = kGreedy) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

test::ProgramResult PiRun(const std::vector<std::string>& args) {
  return test::RunProgram(PI_RUN_PATH, args);
}

// A fresh directory holding copies of the bundled model files named in `files`.
fs::path DirWith(const std::string& name, const std::vector<std::string>& files) {
  const fs::path dir = fs::path(test::ScratchDir()) / "any_model" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const std::string& file : files) {
    fs::copy_file(test::SourcePath("models/stories260K/" + file), dir / file);
  }
  return dir;
}

int64_t MtimeNs(const fs::path& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void SetMtime(const fs::path& path, time_t seconds) {
  const struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
}

// The .pi files in `dir`.
std::vector<std::string> PiFiles(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".pi") found.push_back(entry.path().filename().string());
  }
  return found;
}

// A failed run: non-zero, nothing on stdout, its last stderr line the one error, naming `mention`.
void ExpectOneLineError(const test::ProgramResult& r, const std::string& mention) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_TRUE(absl::EndsWith(r.err, "\n")) << r.err;
  const std::string err = r.err.substr(0, r.err.size() - 1);
  const std::string last = err.substr(err.rfind('\n') + 1);
  EXPECT_TRUE(absl::StartsWith(last, "pi-run: error: ")) << r.err;
  EXPECT_TRUE(absl::StrContains(last, mention)) << r.err << " lacks " << mention;
  EXPECT_FALSE(absl::StrContains(err.substr(0, err.size() - last.size()), "error")) << r.err;
}

TEST(AnyModelTest, GgufRunsDirectlyConvertedOnceAndAgainWhenTouched) {
  const fs::path dir = DirWith("gguf", {"stories260K.gguf"});
  const fs::path gguf = dir / "stories260K.gguf";
  const fs::path cache = dir / "stories260K.gguf.pi";
  // The reference: pi-convert by hand, then pi-run of that .pi (kept outside `dir`).
  const fs::path reference = dir.parent_path() / "gguf_reference.pi";
  const test::ProgramResult converted =
      test::RunProgram(PI_CONVERT_PATH, {gguf.string(), "-o", reference.string(), "-q"});
  ASSERT_EQ(converted.exit_code, 0) << converted.err;
  const test::ProgramResult expected = PiRun(With({"-m", reference.string()}));
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  ASSERT_FALSE(expected.out.empty());

  const test::ProgramResult first = PiRun(With({"-m", gguf.string()}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, expected.out);
  EXPECT_TRUE(
      absl::StrContains(first.err, "converting " + gguf.string() + " into " + cache.string()))
      << first.err;
  EXPECT_TRUE(absl::StrContains(first.err, "pi-convert: wrote")) << first.err;  // its own lines
  EXPECT_TRUE(absl::StrContains(first.err, "model " + cache.string() + ":")) << first.err;
  ASSERT_TRUE(fs::exists(cache));
  EXPECT_EQ(PiFiles(dir), std::vector<std::string>{"stories260K.gguf.pi"});

  // Unchanged: the cache as it is (its mtime, set to a mark, stays), one line says so.
  SetMtime(cache, 1000000);
  const test::ProgramResult second = PiRun(With({"-m", gguf.string()}));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, expected.out);
  EXPECT_TRUE(absl::StrContains(second.err, "using the cached conversion " + cache.string()))
      << second.err;
  EXPECT_FALSE(absl::StrContains(second.err, "converting")) << second.err;
  EXPECT_FALSE(absl::StrContains(second.err, "pi-convert")) << second.err;
  EXPECT_EQ(MtimeNs(cache), int64_t{1000000} * 1000000000);

  // Touched (same bytes, another mtime): converted again.
  SetMtime(gguf, 2000000);
  const test::ProgramResult third = PiRun(With({"-m", gguf.string()}));
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(third.out, expected.out);
  EXPECT_TRUE(absl::StrContains(third.err, "is stale")) << third.err;
  EXPECT_TRUE(absl::StrContains(third.err, "pi-convert: wrote")) << third.err;
  EXPECT_NE(MtimeNs(cache), int64_t{1000000} * 1000000000);
  const test::ProgramResult fourth = PiRun(With({"-m", gguf.string()}));
  EXPECT_TRUE(absl::StrContains(fourth.err, "using the cached conversion")) << fourth.err;

  // --dtype picks another cached file; the first stays.
  const test::ProgramResult q8 = PiRun(With({"-m", gguf.string(), "--dtype", "q8_0"}));
  ASSERT_EQ(q8.exit_code, 0) << q8.err;
  EXPECT_TRUE(absl::StrContains(q8.err, "q8_0 weights")) << q8.err;
  EXPECT_TRUE(fs::exists(dir / "stories260K.gguf.q8_0.pi"));
  EXPECT_TRUE(fs::exists(cache));
}

// Runs pi-run as a user who cannot write to a folder chmod 555: as root, without the capability
// that lets root write anywhere (setpriv); "" when this cannot be arranged here.
std::string UnprivilegedPrefixOrEmpty(const fs::path& read_only_dir) {
  if (geteuid() != 0) return "env";
  const std::string drop =
      "setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,"
      "-dac_read_search";
  if (std::system(absl::StrCat(drop, " true 2>/dev/null").c_str()) != 0) return "";
  const std::string probe = (read_only_dir / "probe").string();
  const int wrote = std::system(absl::StrCat(drop, " touch '", probe, "' 2>/dev/null").c_str());
  if (wrote == 0 || fs::exists(probe)) {
    fs::remove(probe);
    return "";
  }
  return drop + " env";
}

TEST(AnyModelTest, ReadOnlyFolderCachesInXdgCacheHome) {
  const fs::path dir = DirWith("read_only", {"stories260K.gguf"});
  const fs::path cache_home = dir.parent_path() / "read_only_cache_home";
  fs::remove_all(cache_home);
  fs::create_directories(cache_home);
  const fs::path gguf = dir / "stories260K.gguf";
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  const std::string prefix = UnprivilegedPrefixOrEmpty(dir);
  if (prefix.empty()) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
    GTEST_SKIP() << "running as root and setpriv cannot drop CAP_DAC_OVERRIDE here, so no folder "
                    "is read-only to this test";
  }
  auto run = [&] {
    return test::RunProgram(
        "sh",
        {"-c", absl::StrCat(prefix, " XDG_CACHE_HOME='", cache_home.string(), "' '", PI_RUN_PATH,
                            "' -m '", gguf.string(), "' -p Once -n 8 --temp 0 -t 1")});
  };
  const test::ProgramResult first = run();
  const test::ProgramResult second = run();
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(PiFiles(dir).empty());
  const std::vector<std::string> cached = PiFiles(cache_home / "pinfer");
  ASSERT_EQ(cached.size(), 1u);
  EXPECT_TRUE(absl::EndsWith(cached[0], "-stories260K.gguf.pi")) << cached[0];
  const std::string cache = (cache_home / "pinfer" / cached[0]).string();
  EXPECT_TRUE(absl::StrContains(first.err, "into " + cache)) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(absl::StrContains(second.err, "using the cached conversion " + cache)) << second.err;
  EXPECT_EQ(second.out, first.out);
}

TEST(AnyModelTest, Llama2cCheckpointNeedsItsTokenizer) {
  const fs::path dir = DirWith("llama2c", {"stories260K.bin", "tok512.bin"});
  const std::string bin = (dir / "stories260K.bin").string();
  ExpectOneLineError(PiRun(With({"-m", bin})), "--tokenizer");
  EXPECT_TRUE(PiFiles(dir).empty());

  const test::ProgramResult expected =
      PiRun(With({"-m", test::ConvertedModel(BundledModel::kStories260K)}));
  ASSERT_EQ(expected.exit_code, 0) << expected.err;
  const test::ProgramResult r =
      PiRun(With({"-m", bin, "--tokenizer", (dir / "tok512.bin").string()}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected.out);
  EXPECT_EQ(PiFiles(dir), std::vector<std::string>{"stories260K.bin.pi"});
  // The tokenizer is part of the key: without it the cache is not that model's any more.
  ExpectOneLineError(PiRun(With({"-m", bin})), "--tokenizer");
  EXPECT_TRUE(PiFiles(dir).empty());
}

TEST(AnyModelTest, NotAModelGetsOneLineAndNoCache) {
  const fs::path dir = DirWith("bad", {});
  {
    std::FILE* f = std::fopen((dir / "notes.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("not a model at all\n", f);
    std::fclose(f);
  }
  const std::string notes = (dir / "notes.txt").string();
  ExpectOneLineError(PiRun(With({"-m", notes})), notes + ": unrecognised model format");
  fs::create_directories(dir / "no_config");
  ExpectOneLineError(PiRun(With({"-m", (dir / "no_config").string()})), "without config.json");
  EXPECT_TRUE(PiFiles(dir).empty());
  const std::string pi = test::ConvertedModel(BundledModel::kStories260K);
  ExpectOneLineError(PiRun(With({"-m", pi, "--tokenizer", notes})), "is a .pi model");
  ExpectOneLineError(PiRun(With({"-m", pi, "--dtype", "q8_0"})), "already a .pi model");
  ExpectOneLineError(PiRun(With({"-m", (dir / "notes.txt").string(), "--dtype", "q3"})), "--dtype");
}

// A HuggingFace directory: cached beside it as <dir>.pi, keyed by the files in it.
TEST(AnyModelTest, HuggingFaceDirectoryRunsDirectly) {
  const fs::path dir = DirWith("hf", {}) / "tiny-llama";
  testing::WriteHfModel(dir.string(), {});
  const fs::path reference = dir.parent_path() / "reference.pi";
  const test::ProgramResult converted =
      test::RunProgram(PI_CONVERT_PATH, {dir.string(), "-o", reference.string(), "-q"});
  ASSERT_EQ(converted.exit_code, 0) << converted.err;
  const test::ProgramResult expected = PiRun(With({"-m", reference.string()}));
  ASSERT_EQ(expected.exit_code, 0) << expected.err;

  const fs::path cache = dir.parent_path() / "tiny-llama.pi";
  const test::ProgramResult first = PiRun(With({"-m", dir.string() + "/"}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, expected.out);
  EXPECT_TRUE(absl::StrContains(first.err, "into " + cache.string())) << first.err;
  const test::ProgramResult second = PiRun(With({"-m", dir.string()}));
  EXPECT_TRUE(absl::StrContains(second.err, "using the cached conversion " + cache.string()))
      << second.err;
  SetMtime(dir / "config.json", 3000000);  // any file of the checkpoint counts
  const test::ProgramResult third = PiRun(With({"-m", dir.string()}));
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_TRUE(absl::StrContains(third.err, "config.json changed")) << third.err;
  EXPECT_EQ(third.out, expected.out);
}

// pi-server's load is pi-run's (LoadRuntime over the same flags): a server over a GGUF answers.
TEST(AnyModelTest, ServerServesAGguf) {
  const fs::path dir = DirWith("server", {"stories260K.gguf"});
  RuntimeFlags flags;
  flags.model_path = (dir / "stories260K.gguf").string();
  flags.threads = 1;
  absl::StatusOr<LoadedRuntime> rt = LoadRuntime(flags, "pi-server: ");
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ(rt->model_path, (dir / "stories260K.gguf.pi").string());
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.log_requests = false;
  absl::StatusOr<std::unique_ptr<PiServer>> server =
      PiServer::Create(*rt->executor, *rt->tokenizer, SessionOptions{}, options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  const test::json greedy = {
      {"prompt", "Once upon a time"}, {"max_tokens", 12}, {"temperature", 0}};
  const test::HttpReply reply = test::Post((*server)->port(), "/v1/completions", greedy);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_TRUE(absl::StartsWith(test::ReplyText(reply.Json()), ", there was a little girl"))
      << reply.body;
}

}  // namespace
}  // namespace pinfer
