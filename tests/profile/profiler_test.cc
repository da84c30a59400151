// pi-profile on the bundled real models: the ReLU model's zero fraction against the reference,
// counts and samples against a direct recomputation with the dense runtime, calibrated thresholds
// on held-back text, profiles rejected for another model, and bad input that leaves no file.
#include "tools/profile/profiler.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "format/half.h"
#include "format/pi_file.h"
#include "format/sample_file.h"
#include "gtest/gtest.h"
#include "runtime/model/activation_profile.h"
#include "tests/runtime/runtime_harness.h"
#include "tests/runtime/test_models.h"

namespace pinfer {
namespace {

namespace fs = std::filesystem;
using test::BundledModel;

constexpr char kStories[] = "tests/data/text/tinystories_valid_head.txt";

std::string Scratch(const std::string& name) {
  return (fs::path(test::ScratchDir()) / name).string();
}

std::string WriteScratch(const std::string& name, const std::string& contents) {
  const std::string path = Scratch(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  return path;
}

std::string Relu() { return test::ConvertedModel(BundledModel::kReluLlama260K); }
std::string Stories() { return test::ConvertedModel(BundledModel::kStories260K); }

std::string Digest(const std::string& model) { return (*PiFile::Open(model))->ContentDigestHex(); }

ProfileOptions Options(const std::string& model, std::vector<std::string> datasets,
                       const std::string& name) {
  ProfileOptions o;
  o.model_path = model;
  o.datasets = std::move(datasets);
  o.output_path = Scratch(name + ".profile.pi");
  o.plot_path = Scratch(name + ".profile.svg");
  o.samples_path = Scratch(name + ".samples.zst");
  o.progress = false;
  return o;
}

// The stories of TinyStories (blank-line separated paragraphs) from byte `from` to about `to`.
std::string StoriesText(size_t from, size_t to) {
  const std::string all = test::ReadRepoFile(kStories);
  from = from == 0 ? 0 : all.find("\n\n", from) + 2;
  to = all.find("\n\n", to) + 2;
  return all.substr(from, to - from);
}

TEST(ProfilerTest, DefaultOutputsLieBesideTheModel) {
  EXPECT_EQ(DefaultProfilePath("dir/model.pi"), "dir/model.profile.pi");
  EXPECT_EQ(DefaultProfilePath("model"), "model.profile.pi");
  EXPECT_EQ(DefaultSampleFilePath("/a/b.c/llama-7b.pi"), "/a/b.c/llama-7b.samples.zst");
}

TEST(ProfilerTest, ReluModelZeroFractionMatchesTheReference) {
  ProfileOptions o = Options(Relu(), {test::SourcePath(kStories)}, "relu_reference");
  o.max_tokens = 4096;
  absl::StatusOr<ProfileReport> report = RunProfile(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tokens, 4096);
  EXPECT_EQ(report->context, 64);  // the model's training context
  EXPECT_EQ(report->chunks, 64);
  EXPECT_FALSE(report->calibrated);
  EXPECT_GT(report->tokens_per_second, 0);
  // reference_outputs.md: 76.9% of the FFN gate activations are exactly zero (generated text).
  EXPECT_NEAR(1.0 - report->mean_density, 0.769, 0.02);
  ASSERT_EQ(report->layers.size(), 4u);
  for (const LayerStats& s : report->layers) {
    EXPECT_GT(s.density, 0.05);
    EXPECT_LT(s.density, 0.5);
    EXPECT_EQ(s.threshold, 0.0f);
    // Locality: far fewer than 80% of the neurons carry 80% of the firings.
    EXPECT_LT(s.neurons_for_share[0], 0.65);
    EXPECT_LE(s.neurons_for_share[0], s.neurons_for_share[1]);
    EXPECT_LE(s.neurons_for_share[1], s.neurons_for_share[2]);
  }

  absl::StatusOr<ActivationProfile> profile =
      ActivationProfile::Read(o.output_path, Digest(Relu()));
  ASSERT_TRUE(profile.ok()) << profile.status();
  EXPECT_EQ(profile->tokens, 4096);
  EXPECT_EQ(profile->n_layers, 4);
  EXPECT_EQ(profile->n_ff, 192);
  EXPECT_FALSE(profile->calibrated());
  EXPECT_EQ(profile->datasets, o.datasets);
  EXPECT_DOUBLE_EQ(profile->LayerDensity(2), report->layers[2].density);
  // Every later stage reads it with its model's digest: another model's is refused.
  const absl::Status other = ActivationProfile::Read(o.output_path, Digest(Stories())).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(other.message(), "another model")) << other;
  // Provenance and the plot.
  auto file = PiFile::Open(o.output_path);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*(*file)->GetString("provenance.tool"), "pi-profile");
  EXPECT_EQ(*(*file)->GetInt("profile.chunks"), 64);
  std::ifstream plot(o.plot_path);
  const std::string svg((std::istreambuf_iterator<char>(plot)), {});
  EXPECT_TRUE(absl::StrContains(svg, "<svg")) << o.plot_path;
  EXPECT_TRUE(absl::StrContains(svg, "4096 tokens")) << o.plot_path;
  EXPECT_FALSE(fs::exists(o.samples_path));
}

// Counts firings (a != 0) and sums |a| per neuron, keeping each token's fired mask and input.
class Recorder : public ForwardObserver {
 public:
  Recorder(int64_t layers, int64_t n_ff, int64_t dim)
      : n_ff_(n_ff),
        dim_(dim),
        counts_(layers * n_ff),
        sums_(layers * n_ff),
        masks_(layers),
        inputs_(layers) {}
  void OnFfn(const FfnTrace& t) override {
    for (int64_t k = 0; k < t.n(); ++k) {
      std::vector<bool> mask(n_ff_);
      for (int64_t i = 0; i < n_ff_; ++i) {
        const float a = t.activations[k * n_ff_ + i];
        mask[i] = a != 0.0f;
        counts_[t.layer * n_ff_ + i] += a != 0.0f;
        sums_[t.layer * n_ff_ + i] += std::fabs(a);
      }
      masks_[t.layer].push_back(std::move(mask));
      inputs_[t.layer].emplace_back(t.input + k * dim_, t.input + (k + 1) * dim_);
    }
  }
  int64_t n_ff_, dim_;
  std::vector<int64_t> counts_;
  std::vector<double> sums_;
  std::vector<std::vector<std::vector<bool>>> masks_;
  std::vector<std::vector<std::vector<float>>> inputs_;
};

TEST(ProfilerTest, CountsAndSamplesEqualADirectRecomputation) {
  // A text file and a JSONL file of three stories, chunked to 64 tokens.
  const std::string first = StoriesText(0, 900), second = StoriesText(5000, 5400),
                    third = StoriesText(9000, 9300);
  const std::string txt = WriteScratch("direct.txt", first);
  nlohmann::json a = {{"text", second}}, b = {{"text", third}, {"id", 7}};
  const std::string jsonl = WriteScratch("direct.jsonl", a.dump() + "\n" + b.dump() + "\n");
  ProfileOptions o = Options(Relu(), {txt, jsonl}, "direct");
  o.dump_samples = true;
  o.sample_dtype = DType::kF32;
  absl::StatusOr<ProfileReport> report = RunProfile(o);
  ASSERT_TRUE(report.ok()) << report.status();

  // The recomputation: each document with BOS, concatenated, cut into chunks of 64 that start
  // with BOS, each evaluated from an empty cache by the dense runtime.
  test::Loaded l = test::LoadForTest(Relu());
  ASSERT_NE(l.session, nullptr);
  std::vector<int32_t> stream;
  for (const std::string* text : {&first, &second, &third}) {
    const std::vector<int32_t> t = l.tokenizer->Encode(*text, true);
    stream.insert(stream.end(), t.begin(), t.end());
  }
  const ModelConfig& c = l.model->config();
  Recorder recorder(c.n_layers, c.n_ff, c.dim);
  l.session->SetObserver(&recorder);
  int64_t tokens = 0, chunks = 0;
  for (size_t at = 0; at < stream.size();) {
    std::vector<int32_t> chunk;
    if (stream[at] != l.tokenizer->bos()) chunk.push_back(l.tokenizer->bos());
    while (chunk.size() < 64 && at < stream.size()) chunk.push_back(stream[at++]);
    l.session->Reset();
    ASSERT_TRUE(l.session->Evaluate(chunk, Logits::kNone).ok());
    tokens += static_cast<int64_t>(chunk.size());
    ++chunks;
  }
  ASSERT_GT(chunks, 4);
  EXPECT_EQ(report->tokens, tokens);
  EXPECT_EQ(report->chunks, chunks);

  absl::StatusOr<ActivationProfile> profile =
      ActivationProfile::Read(o.output_path, Digest(Relu()));
  ASSERT_TRUE(profile.ok()) << profile.status();
  ASSERT_EQ(profile->tokens, tokens);
  int64_t fired = 0;
  for (size_t i = 0; i < recorder.counts_.size(); ++i) {
    ASSERT_EQ(profile->fire_count[i], recorder.counts_[i]) << "cell " << i;
    ASSERT_NEAR(profile->mean_abs[i], recorder.sums_[i] / tokens,
                1e-6 + 1e-6 * profile->mean_abs[i]);
    fired += recorder.counts_[i];
  }
  EXPECT_GT(fired, 0);

  // The samples: one pair per token and layer, in token order, with the same masks and inputs.
  absl::StatusOr<std::unique_ptr<SampleFileReader>> samples =
      SampleFileReader::Open(o.samples_path, Digest(Relu()));
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(*(*samples)->metadata().GetString("samples.fire_rule"), "nonzero");
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    ASSERT_EQ((*samples)->LayerSamples(layer), tokens);
    for (size_t frame : (*samples)->LayerFrames(layer)) {
      absl::StatusOr<SampleBatch> batch = (*samples)->ReadFrame(frame);
      ASSERT_TRUE(batch.ok()) << batch.status();
      for (int64_t k = 0; k < batch->count; ++k) {
        const size_t token = static_cast<size_t>(batch->first_sample + k);
        const std::span<const float> input = batch->Input(k);
        ASSERT_EQ(std::vector<float>(input.begin(), input.end()), recorder.inputs_[layer][token]);
        for (int64_t i = 0; i < c.n_ff; ++i) {
          ASSERT_EQ(batch->Fired(k, i), recorder.masks_[layer][token][i]) << layer << " " << token;
        }
      }
    }
  }
  // Samples of the ReLU model are rejected for the SiLU model.
  EXPECT_EQ(SampleFileReader::Open(o.samples_path, Digest(Stories())).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ProfilerTest, SampleEveryKeepsOneTokenInK) {
  ProfileOptions o = Options(Relu(), {test::SourcePath(kStories)}, "every");
  o.max_tokens = 300;
  o.dump_samples = true;
  o.sample_every = 4;
  absl::StatusOr<ProfileReport> report = RunProfile(o);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->samples.samples_per_layer, 75);
  auto samples = SampleFileReader::Open(o.samples_path);
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ((*samples)->spec().input_dtype, DType::kF16);
  EXPECT_EQ(*(*samples)->metadata().GetInt("samples.sample_every"), 4);
  for (int64_t l = 0; l < 4; ++l) EXPECT_EQ((*samples)->LayerSamples(l), 75);
  EXPECT_TRUE((*samples)->VerifyAll().ok());
}

// For each set of thresholds, the fraction of |act(g)| at or below each layer's τ over some text.
class SparsityMeter : public ForwardObserver {
 public:
  SparsityMeter(Activation act, std::vector<std::vector<float>> thresholds)
      : act_(act),
        thresholds_(std::move(thresholds)),
        below_(thresholds_.size(), std::vector<int64_t>(thresholds_[0].size())),
        total_(thresholds_[0].size()) {}
  void OnFfn(const FfnTrace& t) override {
    for (int64_t k = 0; k < t.n() * t.n_ff; ++k) {
      const float magnitude = std::fabs(act_.Gate(t.gate[k]));
      for (size_t set = 0; set < thresholds_.size(); ++set) {
        below_[set][t.layer] += magnitude <= thresholds_[set][t.layer];
      }
    }
    total_[t.layer] += t.n() * t.n_ff;
  }
  double Sparsity(size_t set, size_t layer) const {
    return double(below_[set][layer]) / total_[layer];
  }
  Activation act_;
  std::vector<std::vector<float>> thresholds_;
  std::vector<std::vector<int64_t>> below_;
  std::vector<int64_t> total_;
};

TEST(ProfilerTest, CalibratedThresholdsHitTheTargetOnHeldBackText) {
  // Calibrate on the first ~16000 tokens of TinyStories, measure on 8000 tokens from far later.
  const std::string calibration = WriteScratch("calibration.txt", StoriesText(0, 200000));
  const std::vector<double> targets = {0.4, 0.7};
  std::vector<std::vector<float>> thresholds;
  for (double target : targets) {
    ProfileOptions o = Options(Stories(), {calibration}, absl::StrCat("calibrated_", target));
    o.context = 128;
    o.target_sparsity = target;
    o.calibration_tokens = 16000;
    o.max_tokens = 256;  // the counted part; calibration reads more
    absl::StatusOr<ProfileReport> report = RunProfile(o);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->calibrated);
    EXPECT_EQ(report->calibration_tokens, 16000);
    EXPECT_EQ(report->tokens, 256);
    absl::StatusOr<ActivationProfile> profile =
        ActivationProfile::Read(o.output_path, Digest(Stories()));
    ASSERT_TRUE(profile.ok()) << profile.status();
    EXPECT_TRUE(profile->calibrated());
    EXPECT_DOUBLE_EQ(profile->target_sparsity, target);
    ASSERT_EQ(profile->threshold.size(), 5u);
    for (float tau : profile->threshold) EXPECT_GT(tau, 0.0f);
    thresholds.push_back(profile->threshold);
  }

  // Held-back text in chunks of 128 that start with BOS, like pi-profile's.
  test::Loaded l = test::LoadForTest(Stories(), 128);
  ASSERT_NE(l.session, nullptr);
  std::vector<int32_t> tokens = l.tokenizer->Encode(StoriesText(300000, 340000), true);
  ASSERT_GT(tokens.size(), 8000u);
  SparsityMeter meter(l.model->config().ffn_act, thresholds);
  l.session->SetObserver(&meter);
  for (size_t at = 0; at + 128 <= 8000; at += 128) {
    l.session->Reset();
    std::vector<int32_t> chunk(tokens.begin() + at, tokens.begin() + at + 128);
    chunk[0] = l.tokenizer->bos();
    ASSERT_TRUE(l.session->Evaluate(chunk, Logits::kNone).ok());
  }
  for (size_t set = 0; set < targets.size(); ++set) {
    for (size_t layer = 0; layer < 5; ++layer) {
      EXPECT_NEAR(meter.Sparsity(set, layer), targets[set], 0.01)
          << "target " << targets[set] << ", layer " << layer;
    }
  }
}

TEST(ProfilerTest, ThresholdsFromAnotherProfileOfTheSameModel) {
  const std::string text = WriteScratch("thresholds_text.txt", StoriesText(0, 20000));
  ProfileOptions calibrated = Options(Stories(), {text}, "thresholds_source");
  calibrated.context = 64;
  calibrated.target_sparsity = 0.6;
  calibrated.max_tokens = 1024;
  ASSERT_TRUE(RunProfile(calibrated).ok());
  const ActivationProfile source = *ActivationProfile::Read(calibrated.output_path);

  ProfileOptions reuse = Options(Stories(), {text}, "thresholds_reused");
  reuse.context = 64;
  reuse.max_tokens = 1024;
  reuse.thresholds_from = calibrated.output_path;
  absl::StatusOr<ProfileReport> report = RunProfile(reuse);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->calibration_tokens, 0);  // nothing calibrated here
  const ActivationProfile reused = *ActivationProfile::Read(reuse.output_path);
  EXPECT_EQ(reused.threshold, source.threshold);
  EXPECT_DOUBLE_EQ(reused.target_sparsity, 0.6);
  EXPECT_EQ(reused.fire_count, source.fire_count);  // same text, same thresholds

  // A profile of another model is refused, and so is a profile without thresholds.
  ProfileOptions relu_profile = Options(Relu(), {text}, "thresholds_relu");
  relu_profile.max_tokens = 128;
  ASSERT_TRUE(RunProfile(relu_profile).ok());
  reuse.thresholds_from = relu_profile.output_path;
  const absl::Status other = RunProfile(reuse).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_TRUE(absl::StrContains(other.message(), "another model")) << other;
  reuse.thresholds_from = calibrated.output_path;
  reuse.target_sparsity = 0.5;
  EXPECT_TRUE(absl::StrContains(RunProfile(reuse).status().message(), "not both"));
}

TEST(ProfilerTest, BadInputIsOneErrorAndLeavesNoFile) {
  const std::string stories = test::SourcePath(kStories);
  const std::string empty = WriteScratch("bad_empty.txt", "");
  std::string invalid = "Once upon a time.\n\nThe end";
  invalid[20] = '\xC0';
  const std::string bad_utf8 = WriteScratch("bad_input.txt", invalid);
  const std::string no_text =
      WriteScratch("bad_records.jsonl", "{\"text\": \"fine\"}\n{\"x\": 1}\n");
  const std::string profile_as_model = Scratch("a_profile_as_model.pi");
  {
    ProfileOptions o = Options(Relu(), {stories}, "for_kind");
    o.output_path = profile_as_model;
    o.max_tokens = 64;
    ASSERT_TRUE(RunProfile(o).ok());
  }
  const struct {
    std::string name;
    std::function<void(ProfileOptions&)> edit;
    std::vector<std::string> mentions;
  } cases[] = {
      {"missing",
       [](ProfileOptions& o) { o.datasets = {Scratch("nope.txt")}; },
       {"nope.txt", "no such file"}},
      {"no_datasets", [](ProfileOptions& o) { o.datasets = {}; }, {"--dataset"}},
      {"empty",
       [&](ProfileOptions& o) {
         o.datasets = {stories, empty};
       },
       {empty, "empty"}},
      {"directory",
       [](ProfileOptions& o) { o.datasets = {test::ScratchDir()}; },
       {"not a regular file"}},
      {"utf8",
       [&](ProfileOptions& o) {
         o.datasets = {bad_utf8, stories};
       },
       {bad_utf8, "invalid UTF-8", "byte offset 20"}},
      {"jsonl",
       [&](ProfileOptions& o) { o.datasets = {no_text}; },
       {no_text + ":2:", "no \"text\" field"}},
      {"relu_target",
       [](ProfileOptions& o) { o.target_sparsity = 0.5; },
       {"--target-sparsity", "exact zeros", "shifted_relu:0.25"}},
      {"silu_without_target",
       [](ProfileOptions& o) { o.model_path = Stories(); },
       {"silu", "no exact zeros", "--target-sparsity"}},
      {"target_range",
       [](ProfileOptions& o) { o.target_sparsity = 1.5; },
       {"--target-sparsity", "1.5"}},
      {"context", [](ProfileOptions& o) { o.context = 65; }, {"-c 65", "64"}},
      {"max_tokens", [](ProfileOptions& o) { o.max_tokens = 0; }, {"--max-tokens"}},
      {"sample_every", [](ProfileOptions& o) { o.sample_every = 0; }, {"--sample-every"}},
      {"batch", [](ProfileOptions& o) { o.batch_size = 0; }, {"-b"}},
      {"overwrite_model",
       [](ProfileOptions& o) { o.output_path = o.model_path; },
       {"-o", "would overwrite"}},
      {"overwrite_dataset",
       [&](ProfileOptions& o) {
         o.dump_samples = true;
         o.samples_path = stories;
       },
       {"--samples", "would overwrite"}},
      {"unwritable",
       [](ProfileOptions& o) { o.output_path = "/nonexistent_dir/x.profile.pi"; },
       {"/nonexistent_dir/x.profile.pi"}},
      {"no_model",
       [](ProfileOptions& o) { o.model_path = Scratch("no_model.pi"); },
       {"no_model.pi", "no such file"}},
      {"not_a_model",
       [&](ProfileOptions& o) { o.model_path = profile_as_model; },
       {profile_as_model, "profile"}},
  };
  for (const auto& c : cases) {
    ProfileOptions o = Options(Relu(), {stories}, "bad_" + c.name);
    o.max_tokens = 200;
    o.dump_samples = true;
    c.edit(o);
    const absl::Status s = RunProfile(o).status();
    ASSERT_FALSE(s.ok()) << c.name;
    const std::string message(s.message());
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    for (const std::string& m : c.mentions) {
      EXPECT_TRUE(absl::StrContains(message, m)) << c.name << ": " << message << " lacks " << m;
    }
    if (c.name != "overwrite_model" && c.name != "overwrite_dataset") {
      EXPECT_FALSE(fs::exists(o.output_path)) << c.name;
      EXPECT_FALSE(fs::exists(o.samples_path)) << c.name;
    }
    EXPECT_FALSE(fs::exists(Scratch("bad_" + c.name + ".profile.svg"))) << c.name;
  }
  // Nothing half-written either: no temporary files are left in the scratch directory.
  for (const auto& entry : fs::directory_iterator(test::ScratchDir())) {
    EXPECT_FALSE(absl::StrContains(entry.path().filename().string(), ".tmp.")) << entry.path();
  }
}

}  // namespace
}  // namespace pinfer
