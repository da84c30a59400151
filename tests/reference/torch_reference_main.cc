// torch_reference --model-dir HF_DIR --tokens 1,5,9 [--tokens 4,2 ...] --out logits.f32
//
// Runs the LibTorch reference forward pass (torch_reference.h) of the HF checkpoint in HF_DIR
// (config.json + model.safetensors or shards) over the token ids, dispatching on config.json
// "architectures"[0] (families.cc), and writes the logits of every position. Each --tokens is an
// independent sequence from position 0 (one process start, and LibTorch's load, for several).
//
// Output format: raw little-endian IEEE f32, row-major [n_tokens, vocab], no header: the float at
// byte offset 4 * (i * vocab + t) is the logit of token t after positions 0..i. Its size is
// 4 * n_tokens * vocab bytes. With several --tokens, their rows follow one another in the order
// given (n_tokens is their total). Errors: one line on stderr, exit status 1.
#include <bit>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <ATen/Parallel.h>

#include "CLI/CLI.hpp"
#include "tests/reference/torch_reference.h"

namespace {

std::vector<int64_t> ParseTokens(const std::string& text) {
  std::vector<int64_t> tokens;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || id < 0) {
      throw std::runtime_error("--tokens: '" + item + "' is not a token id");
    }
    tokens.push_back(id);
  }
  if (tokens.empty()) throw std::runtime_error("--tokens: no token ids");
  return tokens;
}

}  // namespace

int main(int argc, char** argv) {
  static_assert(std::endian::native == std::endian::little, "the output is little-endian f32");
  CLI::App app{"LibTorch reference forward pass of a HF checkpoint (test-only)"};
  std::string dir, out;
  std::vector<std::string> sequences;
  app.add_option("--model-dir", dir, "HF checkpoint directory")->required();
  app.add_option("--tokens", sequences, "comma-separated token ids (repeatable: one sequence each)")
      ->required()
      ->take_all()
      ->allow_extra_args(false);
  app.add_option("--out", out, "output: raw f32 logits [n_tokens, vocab]")->required();
  CLI11_PARSE(app, argc, argv);
  // Tiny test models: one thread is fast enough, and the test machines' cores are shared.
  at::set_num_threads(1);
  try {
    const pinfer::reference::HfCheckpoint checkpoint = pinfer::reference::LoadHfCheckpoint(dir);
    const nlohmann::json* archs = nullptr;
    if (auto it = checkpoint.config.find("architectures"); it != checkpoint.config.end()) {
      archs = &*it;
    }
    if (archs == nullptr || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
      throw std::runtime_error(dir + "/config.json: 'architectures' is missing");
    }
    const std::string arch = (*archs)[0].get<std::string>();
    const pinfer::reference::FamilyForward forward = pinfer::reference::FindFamily(arch);
    if (forward == nullptr) {
      throw std::runtime_error(dir + "/config.json: no reference for architecture '" + arch + "'");
    }
    std::vector<torch::Tensor> logits;
    for (const std::string& sequence : sequences) {
      logits.push_back(forward(checkpoint, ParseTokens(sequence)));
    }
    const torch::Tensor all = torch::cat(logits, 0).contiguous();
    std::ofstream file(out, std::ios::binary);
    file.write(reinterpret_cast<const char*>(all.data_ptr<float>()),
               static_cast<std::streamsize>(all.numel() * sizeof(float)));
    if (!file) throw std::runtime_error(out + ": cannot be written");
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "torch_reference: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torch_reference: %s\n", e.what());
    return 1;
  }
  return 0;
}
