// The generators of make_fuzz_corpus (tests/fuzz/README.md): each writes the seeds of some fuzz
// targets under corpus/<target>/. Seeds are small (a few KB to tens of KB: below the fuzzers'
// -max_len) but complete files, made by the project's own writers or copied from real files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pinfer::testing {

// Writes `bytes` to `path` (creating its folder) and prints what it wrote.
void WriteSeed(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);

// A complete llama GGUF: dim 32, 2 heads, 8 tokens, Q8_0 matrices; `n_layers` layers of `n_ff`
// neurons; with `output` a separate classifier (else tied embeddings).
std::vector<uint8_t> TinyLlamaGguf(int n_layers = 1, int n_ff = 32, bool output = false);

// gguf/, safetensors/, pi_file/: the parsers of whole files.
void WriteFormatSeeds(const std::filesystem::path& corpus, const std::filesystem::path& tmp);
// data/artifact_model.pi (fuzz/fixed_model.h), model/, profile/, predictor/, plan/ and
// sample_file/: the model loader and the artifacts made for that model.
void WriteArtifactSeeds(const std::filesystem::path& fuzz_dir, const std::filesystem::path& tmp);
// llama2c_checkpoint/, llama2c_tokenizer/, hf_config/, hf_tokenizer/: conversion sources.
void WriteSourceSeeds(const std::filesystem::path& corpus, const std::filesystem::path& tmp);

}  // namespace pinfer::testing
