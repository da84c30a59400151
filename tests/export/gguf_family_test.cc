// Falcon and OPT GGUFs: llama.cpp's falcon (both layouts) and PowerInfer's ReluFalcon and OPT,
// written by tests/convert/gguf_family_fixture.h from the tiny HF fixtures as the foreign
// converters write them, convert to exactly the model.pi of the HF directory (tensors bit for bit,
// logits, greedy tokens, and the f64 reference of the HF fixture); pi-export writes a Falcon model
// as the same llama.cpp GGUF, tensor for tensor, and pi-convert reads it back identically; broken
// files and unexportable models get one line naming the file and the tensor or key.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>

#include "absl/strings/match.h"
#include "format/pi_file.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/session.h"
#include "runtime/model/model.h"
#include "tests/convert/gguf_family_fixture.h"
#include "tests/convert/test_util.h"
#include "tests/export/export_test_util.h"
#include "tests/model/falcon_fixture.h"
#include "tests/model/opt_fixture.h"
#include "tools/convert/gguf_file.h"

namespace pinfer::testing {
namespace {

namespace fs = std::filesystem;

std::string Scratch(const std::string& test, const std::string& name) {
  const fs::path dir = fs::path(test::ScratchDir()) / "gguf_family" / test;
  fs::create_directories(dir);
  return (dir / name).string();
}

// pi-convert SOURCE -o OUT; returns its stderr (the notes).
std::string Convert(const std::string& source, const std::string& out,
                    std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {source, "-o", out};
  args.insert(args.end(), extra.begin(), extra.end());
  test::ProgramResult r = PiConvert(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.err;
}

std::vector<int32_t> Prompt(int64_t n, int64_t vocab) {
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < n; ++i) tokens.push_back(static_cast<int32_t>((i * 89 + 7) % vocab));
  return tokens;
}

struct ModelRun {
  std::vector<float> logits;  // [prompt, vocab]
  std::vector<int32_t> greedy;
};

// All logits of `prompt` and 8 greedy tokens after it, f32 KV cache, one thread.
ModelRun Evaluate(const std::string& path, const std::vector<int32_t>& prompt) {
  ModelRun run;
  cpu::SetThreads(1);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(path);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return run;
  Executor executor(**model);
  absl::StatusOr<std::unique_ptr<Session>> session =
      Session::Create(executor, {.context_length = 64, .cache_type = DType::kF32});
  EXPECT_TRUE(session.ok()) << session.status();
  if (!session.ok()) return run;
  absl::StatusOr<std::span<const float>> logits = (*session)->Evaluate(prompt, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return run;
  run.logits.assign(logits->begin(), logits->end());
  const int64_t vocab = (*model)->config().vocab_size;
  std::span<const float> last(run.logits.data() + run.logits.size() - vocab, vocab);
  for (int i = 0; i < 8; ++i) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    run.greedy.push_back(token);
    logits = (*session)->Evaluate(std::span<const int32_t>(&token, 1), Logits::kLast);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) break;
    last = *logits;
  }
  return run;
}

void ExpectSameRun(const ModelRun& a, const ModelRun& b, double tolerance) {
  ASSERT_EQ(a.logits.size(), b.logits.size());
  double worst = 0;
  for (size_t i = 0; i < a.logits.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a.logits[i]) - b.logits[i]));
  }
  EXPECT_LE(worst, tolerance);
  EXPECT_EQ(a.greedy, b.greedy);
}

// max |ref - got| <= 2e-4 · max(1, max |ref|) (f32 against the fixture's f64 reference).
void ExpectNearReference(const std::vector<double>& ref, const std::vector<float>& got) {
  ASSERT_EQ(ref.size(), got.size());
  double scale = 1, worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(ref[i]));
    worst = std::max(worst, std::fabs(ref[i] - got[i]));
  }
  EXPECT_LE(worst, 2e-4 * scale);
}

// The same model semantics (model_config.h) whatever the source.
void ExpectSameConfig(const PiFile& a, const PiFile& b) {
  absl::StatusOr<ModelConfig> x = ModelConfig::FromMetadata(a.metadata());
  absl::StatusOr<ModelConfig> y = ModelConfig::FromMetadata(b.metadata());
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(x->architecture, y->architecture);
  EXPECT_EQ(x->dim, y->dim);
  EXPECT_EQ(x->n_layers, y->n_layers);
  EXPECT_EQ(x->n_heads, y->n_heads);
  EXPECT_EQ(x->n_kv_heads, y->n_kv_heads);
  EXPECT_EQ(x->head_dim, y->head_dim);
  EXPECT_EQ(x->n_ff, y->n_ff);
  EXPECT_EQ(x->vocab_size, y->vocab_size);
  EXPECT_EQ(x->context_length, y->context_length);
  EXPECT_FLOAT_EQ(x->rope_theta, y->rope_theta);
  EXPECT_FLOAT_EQ(x->rms_eps, y->rms_eps);
  EXPECT_EQ(x->ffn_act.ToString(), y->ffn_act.ToString());
  EXPECT_EQ(x->tied_embeddings, y->tied_embeddings);
  EXPECT_EQ(x->norm, y->norm);
  EXPECT_EQ(x->positions, y->positions);
  EXPECT_EQ(x->position_offset, y->position_offset);
  EXPECT_EQ(x->ffn_gated, y->ffn_gated);
  EXPECT_EQ(x->biases, y->biases);
  EXPECT_EQ(x->parallel_attn, y->parallel_attn);
  absl::StatusOr<Vocabulary> u = Vocabulary::FromMetadata(a.metadata());
  absl::StatusOr<Vocabulary> v = Vocabulary::FromMetadata(b.metadata());
  ASSERT_TRUE(u.ok() && v.ok());
  EXPECT_EQ(u->pieces, v->pieces);
  EXPECT_EQ(u->merges, v->merges);
  EXPECT_EQ(u->pre_tokenizer, v->pre_tokenizer);
  EXPECT_EQ(u->bos_id, v->bos_id);
  EXPECT_EQ(u->eos_id, v->eos_id);
  EXPECT_EQ(u->add_bos, v->add_bos);
}

class FalconGgufTest : public ::testing::TestWithParam<bool> {
 protected:
  FalconSpec Spec() const { return GetParam() ? Falcon40BLayout() : Falcon7BLayout(); }
  std::string Name() const { return GetParam() ? "falcon40b" : "falcon7b"; }
};

TEST_P(FalconGgufTest, LlamaCppGgufConvertsToTheHfDirectorysModel) {
  const std::string t = "import-" + Name();
  const FalconModel hf = WriteFalconModel(Scratch(t, "hf"), Spec());
  Convert(hf.dir, Scratch(t, "hf.pi"));
  WriteFileBytes(Scratch(t, "falcon.gguf"), FalconGguf(hf));
  Convert(Scratch(t, "falcon.gguf"), Scratch(t, "gguf.pi"));
  std::unique_ptr<PiFile> from_hf = OpenPi(Scratch(t, "hf.pi"));
  std::unique_ptr<PiFile> from_gguf = OpenPi(Scratch(t, "gguf.pi"));
  ASSERT_TRUE(from_hf && from_gguf);
  ExpectSameTensors(*from_hf, *from_gguf);
  ExpectSameConfig(*from_hf, *from_gguf);

  const std::vector<int32_t> prompt = Prompt(7, Spec().vocab);
  const ModelRun a = Evaluate(Scratch(t, "hf.pi"), prompt);
  const ModelRun b = Evaluate(Scratch(t, "gguf.pi"), prompt);
  ExpectSameRun(a, b, 1e-5);
  ExpectNearReference(FalconReferenceLogits(hf, prompt), b.logits);
  EXPECT_EQ(b.greedy, FalconReferenceGreedy(hf, prompt, 8));
  // And pi-run's greedy text, through the falcon tokenizer, from either model.
  std::string texts[2];
  for (int i = 0; i < 2; ++i) {
    test::ProgramResult run =
        PiRun({"-m", Scratch(t, i == 0 ? "hf.pi" : "gguf.pi"), "-p", "Hello, world! How are you?",
               "-n", "12", "--temp", "0", "-t", "1"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    texts[i] = run.out;
  }
  EXPECT_GT(texts[0].size(), 26u);
  EXPECT_EQ(texts[0], texts[1]);
}

// pi-export writes what llama.cpp's converter writes (the fixture), tensor for tensor, and
// pi-convert reads its own export back to the same model.pi.
TEST_P(FalconGgufTest, ExportIsLlamaCppsLayoutAndRoundTrips) {
  const std::string t = "export-" + Name();
  const FalconModel hf = WriteFalconModel(Scratch(t, "hf"), Spec());
  Convert(hf.dir, Scratch(t, "hf.pi"));
  test::ProgramResult r = PiExport({"-m", Scratch(t, "hf.pi"), "-o", Scratch(t, "out.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "falcon")) << r.out;

  const std::vector<uint8_t> ours = ReadFileBytes(Scratch(t, "out.gguf"));
  const std::vector<uint8_t> theirs = FalconGguf(hf);
  absl::StatusOr<GgufFile> exported = GgufFile::Parse(ours, "out.gguf");
  absl::StatusOr<GgufFile> reference = GgufFile::Parse(theirs, "fixture.gguf");
  ASSERT_TRUE(exported.ok() && reference.ok());
  EXPECT_EQ(exported->tensors().size(), reference->tensors().size());
  for (const GgufTensorInfo& want : reference->tensors()) {
    const GgufTensorInfo* got = exported->FindTensor(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->ne, want.ne) << want.name;
    EXPECT_EQ(got->ggml_type, want.ggml_type) << want.name;
    const std::span<const uint8_t> x = exported->TensorData(*got), y = reference->TensorData(want);
    EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << want.name << " differs";
  }
  for (const char* key :
       {"falcon.embedding_length", "falcon.block_count", "falcon.feed_forward_length",
        "falcon.attention.head_count", "falcon.attention.head_count_kv", "falcon.context_length"}) {
    EXPECT_EQ(*exported->GetUint(key), *reference->GetUint(key)) << key;
  }
  EXPECT_EQ(*exported->GetString("general.architecture"), "falcon");
  EXPECT_FLOAT_EQ(*exported->GetFloat("falcon.attention.layer_norm_epsilon"), 1e-5f);
  EXPECT_FLOAT_EQ(*exported->GetFloat("falcon.rope.freq_base"), Spec().rope_theta);

  Convert(Scratch(t, "out.gguf"), Scratch(t, "again.pi"));
  std::unique_ptr<PiFile> original = OpenPi(Scratch(t, "hf.pi"));
  std::unique_ptr<PiFile> again = OpenPi(Scratch(t, "again.pi"));
  ASSERT_TRUE(original && again);
  ExpectSameTensors(*original, *again);
  ExpectSameConfig(*original, *again);

  // --dtype f16: attn_qkv re-encoded from q, k and v, and still what pi-convert reads back.
  Convert(hf.dir, Scratch(t, "f16.pi"), {"--dtype", "f16"});
  r = PiExport({"-m", Scratch(t, "hf.pi"), "--dtype", "f16", "-o", Scratch(t, "f16.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Convert(Scratch(t, "f16.gguf"), Scratch(t, "f16-again.pi"));
  std::unique_ptr<PiFile> f16 = OpenPi(Scratch(t, "f16.pi"));
  std::unique_ptr<PiFile> f16_again = OpenPi(Scratch(t, "f16-again.pi"));
  ASSERT_TRUE(f16 && f16_again);
  ExpectSameTensors(*f16, *f16_again);
}

// PowerInfer's ReluFalcon GGUF: ffn_down_t as stored, the activation relu, the predictor's
// tensors noted and left out (pinfer's predictor reads another input).
TEST_P(FalconGgufTest, PowerInferReluFalconConvertsToTheHfDirectorysModel) {
  const std::string t = "powerinfer-" + Name();
  FalconModel hf = WriteFalconModel(Scratch(t, "hf"), Spec());
  hf.config["activation"] = "relu";
  WriteFileText(hf.dir + "/config.json", hf.config.dump(2));
  Convert(hf.dir, Scratch(t, "hf.pi"));
  GgufFamilyOptions options;
  options.powerinfer = true;
  WriteFileBytes(Scratch(t, "relu.gguf"), FalconGguf(hf, options));
  const std::string notes = Convert(Scratch(t, "relu.gguf"), Scratch(t, "gguf.pi"));
  EXPECT_TRUE(absl::StrContains(notes, "PowerInfer predictor tensors (fc1/fc2)")) << notes;
  EXPECT_TRUE(absl::StrContains(notes, "cannot be imported")) << notes;
  // Nor does pi-train-predictor --import fold them into a wrong predictor.
  if (*PI_TRAIN_PREDICTOR_PATH != 0) {
    ExpectOneLineError(
        PiTrainPredictor({"-m", Scratch(t, "gguf.pi"), "--import", Scratch(t, "relu.gguf")}),
        "pi-train-predictor", "predictor reads the residual before the LayerNorm");
    EXPECT_FALSE(fs::exists(Scratch(t, "gguf.predictor.pi")));
  }
  std::unique_ptr<PiFile> from_hf = OpenPi(Scratch(t, "hf.pi"));
  std::unique_ptr<PiFile> from_gguf = OpenPi(Scratch(t, "gguf.pi"));
  ASSERT_TRUE(from_hf && from_gguf);
  ExpectSameTensors(*from_hf, *from_gguf);
  ExpectSameConfig(*from_hf, *from_gguf);
  EXPECT_EQ(ModelConfig::FromMetadata(from_gguf->metadata())->ffn_act.ToString(), "relu");
  const std::vector<int32_t> prompt = Prompt(7, Spec().vocab);
  ExpectSameRun(Evaluate(Scratch(t, "hf.pi"), prompt), Evaluate(Scratch(t, "gguf.pi"), prompt),
                1e-5);
}

INSTANTIATE_TEST_SUITE_P(Layouts, FalconGgufTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Falcon40B" : "Falcon7B";
                         });

TEST(OptGgufTest, PowerInferOptConvertsToTheHfDirectorysModel) {
  for (const bool tied : {true, false}) {
    const std::string t = tied ? "opt-tied" : "opt-untied";
    OptSpec spec;
    spec.tied = tied;
    const OptModel hf = WriteOptModel(Scratch(t, "hf"), spec);
    Convert(hf.dir, Scratch(t, "hf.pi"));
    WriteFileBytes(Scratch(t, "opt.gguf"), OptPowerInferGguf(hf));
    const std::string notes = Convert(Scratch(t, "opt.gguf"), Scratch(t, "gguf.pi"));
    EXPECT_TRUE(absl::StrContains(notes, "cannot be imported")) << notes;
    std::unique_ptr<PiFile> from_hf = OpenPi(Scratch(t, "hf.pi"));
    std::unique_ptr<PiFile> from_gguf = OpenPi(Scratch(t, "gguf.pi"));
    ASSERT_TRUE(from_hf && from_gguf);
    ExpectSameTensors(*from_hf, *from_gguf);
    ExpectSameConfig(*from_hf, *from_gguf);
    const std::vector<int32_t> prompt = Prompt(7, spec.vocab);
    const ModelRun a = Evaluate(Scratch(t, "hf.pi"), prompt);
    const ModelRun b = Evaluate(Scratch(t, "gguf.pi"), prompt);
    ExpectSameRun(a, b, 1e-5);
    ExpectNearReference(OptReferenceLogits(hf, prompt), b.logits);
    EXPECT_EQ(b.greedy, OptReferenceGreedy(hf, prompt, 8));
  }
}

// A broken falcon or opt GGUF: one line naming the file and the tensor or key.
TEST(FamilyGgufBadInputTest, OneLineNamingTheFileAndTheTensorOrKey) {
  const FalconModel falcon = WriteFalconModel(Scratch("bad", "falcon-hf"), Falcon40BLayout());
  const OptModel opt = WriteOptModel(Scratch("bad", "opt-hf"));
  const std::vector<uint8_t> wrong_bytes(5 * 64 * 4, 0);
  // A file without `names`; or with `name` replaced by a [5, 64] f32 tensor (or a key by `extra`).
  auto drop = [](std::vector<std::string> names) {
    GgufFamilyOptions o;
    o.drop = std::move(names);
    return o;
  };
  auto replace = [&](const std::string& name, std::function<void(GgufBuilder&)> extra = {}) {
    GgufFamilyOptions o;
    o.drop = {name};
    o.extra = extra ? extra : [name, &wrong_bytes](GgufBuilder& b) {
      b.AddTensor(name, {64, 5}, 0, wrong_bytes);
    };
    return o;
  };
  GgufFamilyOptions unknown;
  unknown.extra = [&](GgufBuilder& b) {
    b.AddTensor("blk.0.attn_q.weight", {64, 5}, 0, wrong_bytes);
  };
  const struct {
    std::string name;
    bool falcon;
    GgufFamilyOptions options;
    std::string expected;
  } cases[] = {
      {"no-qkv", true, drop({"blk.1.attn_qkv.weight"}),
       "tensor 'blk.1.attn_qkv.weight' is missing"},
      {"no-norm-bias", true, drop({"blk.0.attn_norm.bias"}),
       "tensor 'blk.0.attn_norm.bias' is missing"},
      {"no-eps", true, drop({"falcon.attention.layer_norm_epsilon"}),
       "falcon.attention.layer_norm_epsilon"},
      {"no-heads", true, drop({"falcon.attention.head_count"}), "falcon.attention.head_count"},
      {"qkv-shape", true, replace("blk.0.attn_qkv.weight"),
       "tensor 'blk.0.attn_qkv.weight': inconsistent shape [5, 64]"},
      {"up-shape", true, replace("blk.0.ffn_up.weight"),
       "inconsistent shape: tensor 'blk.0.ffn_up.weight' is [5, 64]"},
      {"unknown-tensor", true, unknown,
       "tensor 'blk.0.attn_q.weight' is not part of a 2-layer falcon model"},
      {"no-positions", false, drop({"position_embd.weight"}),
       "tensor 'position_embd.weight' is missing"},
      {"no-fc1-bias", false, drop({"blk.1.ffn_up.bias"}), "tensor 'blk.1.ffn_up.bias' is missing"},
      {"no-down", false, drop({"blk.0.ffn_down_t.weight"}), "tensor 'blk.0.ffn_down_t' is missing"},
      {"context", false,
       replace("opt.context_length",
               [](GgufBuilder& b) { b.AddUint32("opt.context_length", 2048); }),
       "metadata 'opt.context_length' is 2048 but position_embd.weight has 66 rows"},
      {"no-layers", false, drop({"opt.block_count"}), "opt.block_count"},
  };
  for (const auto& c : cases) {
    const std::string path = Scratch("bad", c.name + ".gguf");
    WriteFileBytes(path,
                   c.falcon ? FalconGguf(falcon, c.options) : OptPowerInferGguf(opt, c.options));
    const std::string out = Scratch("bad", c.name + ".pi");
    ExpectOneLineError(PiConvert({path, "-o", out}), "pi-convert", c.expected);
    EXPECT_TRUE(absl::StrContains(PiConvert({path, "-o", out}).err, path)) << c.name;
    EXPECT_FALSE(fs::exists(out)) << c.name;
  }
}

// What llama.cpp (or PowerInfer) cannot run is refused in one line, and no file appears.
TEST(FamilyExportTest, UnexportableModelsAreRefused) {
  const OptModel opt = WriteOptModel(Scratch("refuse", "opt-hf"));
  Convert(opt.dir, Scratch("refuse", "opt.pi"));
  ExpectOneLineError(
      PiExport({"-m", Scratch("refuse", "opt.pi"), "-o", Scratch("refuse", "x.gguf")}), "pi-export",
      "architecture 'opt': llama.cpp has no OPT architecture");
  FalconModel falcon = WriteFalconModel(Scratch("refuse", "falcon-hf"), Falcon7BLayout());
  falcon.config["activation"] = "relu";
  WriteFileText(falcon.dir + "/config.json", falcon.config.dump(2));
  Convert(falcon.dir, Scratch("refuse", "relu.pi"));
  ExpectOneLineError(
      PiExport({"-m", Scratch("refuse", "relu.pi"), "-o", Scratch("refuse", "x.gguf")}),
      "pi-export", "the FFN activation is relu; llama.cpp's falcon computes gelu");
  for (const char* model : {"opt.pi", "relu.pi"}) {
    ExpectOneLineError(PiExport({"-m", Scratch("refuse", model), "--format", "powerinfer", "-o",
                                 Scratch("refuse", "x.gguf")}),
                       "pi-export", "predictor reads the residual before the LayerNorm");
  }
  EXPECT_FALSE(fs::exists(Scratch("refuse", "x.gguf")));
}

}  // namespace
}  // namespace pinfer::testing
