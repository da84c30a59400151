// pi-convert of a q4_0 GGUF writes q4_0x16 for the matrices read by dot products, losslessly, and
// the model computes what the plain q4_0 conversion computes: logits within 1e-5 (the dot products
// sum in another order) at decode, small-batch and prompt sizes, and the same greedy text. The
// model is a pi-synth GGUF of dim 512 (one full 16-block group per row, so the grouped kernel
// runs; the bundled models' dim 64 rows are all tail).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "format/pi_file.h"
#include "format/quant.h"
#include "gtest/gtest.h"
#include "runtime/cpu/kernels.h"
#include "runtime/model/tensor_names.h"
#include "tests/convert/test_util.h"
#include "tests/runtime/runtime_harness.h"
#include "tools/convert/gguf_file.h"

namespace pinfer::testing {
namespace {

struct Models {
  std::string gguf, x16, plain, synth;  // synth: the .pi pi-synth wrote beside the GGUF
};

// Made once for the suite: the synthesis and both conversions take well under a second.
const Models& MakeModels() {
  static const Models models = [] {
    // One thread: on a loaded 2-core machine, OpenMP's spinning threads wait on each other for
    // seconds; the kernels' thread split is tested in tests/cpu.
    cpu::SetThreads(1);
    const std::string dir = ScratchDir("q4x16_convert");
    Models m{dir + "/m.gguf", dir + "/x16.pi", dir + "/plain.pi", dir + "/synth.pi"};
    const ToolResult synth = RunTool(
        "pi-synth", {"--shape", "custom:d=512,ff=1056,layers=2,heads=8,vocab=512", "--dtype",
                     "q4_0", "--seed", "3", "--q4_0x16", "-o", m.synth, "--gguf", m.gguf, "-q"});
    EXPECT_EQ(synth.exit_code, 0) << synth.err;
    const ToolResult x16 = RunTool("pi-convert", {m.gguf, "--q4_0x16", "-o", m.x16, "-q"});
    EXPECT_EQ(x16.exit_code, 0) << x16.err;
    const ToolResult plain = RunTool("pi-convert", {m.gguf, "-o", m.plain, "-q"});
    EXPECT_EQ(plain.exit_code, 0) << plain.err;
    return m;
  }();
  return models;
}

bool ReadByDotProducts(const std::string& name) {
  for (const char* suffix : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up"}) {
    if (name.ends_with(suffix)) return true;
  }
  return name == tensor_names::kOutput;
}

TEST(Q4x16Convert, DotProductMatricesBecomeQ4_0x16Losslessly) {
  const Models& m = MakeModels();
  auto x16 = PiFile::Open(m.x16);
  auto plain = PiFile::Open(m.plain);
  ASSERT_TRUE(x16.ok()) << x16.status();
  ASSERT_TRUE(plain.ok()) << plain.status();
  int reordered = 0;
  for (const TensorInfo& t : (*x16)->tensors()) {
    SCOPED_TRACE(t.name);
    const TensorInfo* p = (*plain)->Find(t.name);
    ASSERT_NE(p, nullptr);
    if (t.shape.size() == 1) continue;
    EXPECT_EQ(p->dtype, DType::kQ4_0);  // the default keeps the GGUF's blocks as they are
    if (!ReadByDotProducts(t.name)) {
      EXPECT_EQ(t.dtype, DType::kQ4_0);  // ffn_down_t, the embedding table of an untied model
      continue;
    }
    ASSERT_EQ(t.dtype, DType::kQ4_0x16);
    ASSERT_EQ(t.size, p->size);
    std::vector<uint8_t> back(t.size);
    ConvertQ4_0x16ToQ4_0((*x16)->DataAs<uint8_t>(t), back.data(), t.shape[0], t.shape[1]);
    EXPECT_EQ(std::memcmp(back.data(), (*plain)->DataAs<uint8_t>(*p), t.size), 0);
    EXPECT_NE(std::memcmp((*x16)->DataAs<uint8_t>(t), (*plain)->DataAs<uint8_t>(*p), t.size), 0);
    ++reordered;
  }
  EXPECT_EQ(reordered, 2 * 6 + 1);

  // pi-synth writes its .pi as pi-convert writes the GGUF it made alongside.
  auto synth = PiFile::Open(m.synth);
  ASSERT_TRUE(synth.ok()) << synth.status();
  for (const TensorInfo& t : (*x16)->tensors()) {
    if (!ReadByDotProducts(t.name)) continue;
    SCOPED_TRACE(t.name);
    const TensorInfo* s = (*synth)->Find(t.name);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->dtype, DType::kQ4_0x16);
    EXPECT_EQ(s->checksum, t.checksum);
  }

  const ToolResult inspect = RunTool("pi-inspect", {m.x16, "--verify"});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("blk.0.attn_q       q4_0x16"), std::string::npos) << inspect.out;
}

// Logits of every position of a prompt (one pass of n tokens), then of single-token steps.
std::vector<std::vector<float>> RunLogits(const std::string& path, int64_t prompt_tokens) {
  test::Loaded l = test::LoadForTest(path, 256);
  std::vector<std::vector<float>> out;
  if (l.session == nullptr) return out;
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < prompt_tokens; ++i)
    tokens.push_back(static_cast<int32_t>(1 + i * 37 % 500));
  auto logits = l.session->Evaluate(tokens, Logits::kAll);
  EXPECT_TRUE(logits.ok()) << logits.status();
  if (!logits.ok()) return out;
  out.emplace_back(logits->begin(), logits->end());
  for (int32_t token : {7, 300, 42}) {
    auto step = l.session->Evaluate(std::span<const int32_t>(&token, 1));
    EXPECT_TRUE(step.ok()) << step.status();
    if (!step.ok()) return out;
    out.emplace_back(step->begin(), step->end());
  }
  return out;
}

TEST(Q4x16Convert, LogitsMatchThePlainQ4_0Model) {
  const Models& m = MakeModels();
  // 4 tokens: the small-batch path; 20: the prompt path (over 16 tokens).
  for (int64_t prompt : {4, 20}) {
    SCOPED_TRACE(::testing::Message() << "prompt of " << prompt);
    const auto x16 = RunLogits(m.x16, prompt);
    const auto plain = RunLogits(m.plain, prompt);
    ASSERT_EQ(x16.size(), 4u);
    ASSERT_EQ(plain.size(), x16.size());
    double largest = 0.0;
    for (size_t pass = 0; pass < x16.size(); ++pass) {
      ASSERT_EQ(x16[pass].size(), plain[pass].size());
      for (size_t i = 0; i < x16[pass].size(); ++i) {
        const double diff = std::fabs(x16[pass][i] - plain[pass][i]);
        largest = std::max(largest, diff);
        ASSERT_LE(diff, 1e-5 * std::max(1.0, std::fabs(double{plain[pass][i]})))
            << "pass " << pass << " logit " << i;
      }
    }
    // The logits are not all zero (a broken kernel writing nothing would pass the comparison).
    EXPECT_GT(*std::max_element(plain[0].begin(), plain[0].end()), 1e-3);
  }
}

TEST(Q4x16Convert, SameGreedyText) {
  const Models& m = MakeModels();
  test::Loaded x16 = test::LoadForTest(m.x16, 256);
  test::Loaded plain = test::LoadForTest(m.plain, 256);
  ASSERT_NE(x16.session, nullptr);
  ASSERT_NE(plain.session, nullptr);
  const std::string text = test::GreedyContinuation(plain, "Once upon a time", 24);
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(test::GreedyContinuation(x16, "Once upon a time", 24), text);
}


// Handing the model back as a GGUF (pi-export) undoes the reordering: every matrix read by dot
// products has the source GGUF's q4_0 blocks, byte for byte. (pi-export writes llama.cpp GGUFs of
// SiLU models only, so the synthetic GGUF is converted again with --ffn-act silu.)
TEST(Q4x16Convert, ExportGivesTheSourceBlocksBack) {
  const Models& m = MakeModels();
  const std::string dir = ScratchDir("q4x16_export");
  const std::string silu = dir + "/silu.pi", exported = dir + "/exported.gguf";
  const ToolResult convert = RunTool("pi-convert", {m.gguf, "--q4_0x16", "--ffn-act", "silu", "-o", silu, "-q"});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  const ToolResult out = RunTool("pi-export", {"-m", silu, "-o", exported, "-q"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  const std::vector<uint8_t> source_bytes = ReadFileBytes(m.gguf);
  const std::vector<uint8_t> exported_bytes = ReadFileBytes(exported);
  auto source = GgufFile::Parse(source_bytes, m.gguf);
  auto back = GgufFile::Parse(exported_bytes, exported);
  ASSERT_TRUE(source.ok()) << source.status();
  ASSERT_TRUE(back.ok()) << back.status();
  int compared = 0;
  for (const GgufTensorInfo& t : source->tensors()) {
    if (!ReadByDotProducts(t.name.substr(0, t.name.rfind('.')))) continue;  // "blk.0.attn_q.weight"
    SCOPED_TRACE(t.name);
    const GgufTensorInfo* e = back->FindTensor(t.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->ggml_type, t.ggml_type);
    ASSERT_EQ(e->size, t.size);
    EXPECT_EQ(std::memcmp(back->TensorData(*e).data(), source->TensorData(t).data(), t.size), 0);
    ++compared;
  }
  EXPECT_EQ(compared, 2 * 6 + 1);
}

// The plan's device side reads plain q4_0 (the CUDA kernels do not know the reordering): the whole
// model on the CPU stand-in of the GPU (-ngl 99) gives the host's greedy text.
TEST(Q4x16Convert, DeviceLayersGiveTheHostText) {
  const Models& m = MakeModels();
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"-m", m.x16, "-p", "Once upon a time", "-n", "16",
                                     "--temp", "0", "-t", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunTool("pi-run", args);
  };
  const ToolResult host = run({});
  const ToolResult device = run({"-ngl", "99", "--gpu-backend", "cpu"});
  ASSERT_EQ(host.exit_code, 0) << host.err;
  ASSERT_EQ(device.exit_code, 0) << device.err;
  EXPECT_FALSE(host.out.empty());
  EXPECT_EQ(device.out, host.out);
  EXPECT_NE(device.err.find("VRAM (cpu stand-in)"), std::string::npos) << device.err;
}

}  // namespace
}  // namespace pinfer::testing
