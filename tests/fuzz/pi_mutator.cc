#include "tests/fuzz/pi_mutator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/dtype.h"
#include "tests/fuzz/pi_image.h"

// libFuzzer's own byte mutator (linked in by -fsanitize=fuzzer).
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace pinfer::fuzz {
namespace {

using Rng = std::minstd_rand;

// Tensors are resized with their shape only up to this, so that a mutated input stays small.
constexpr uint64_t kMaxTensorBytes = 256 * 1024;

// Values at the edges of what the readers check: sizes that overflow when multiplied, counts near
// 2^31 and 2^32 (int32 truncation), negative values where counts are expected.
// clang-format off
constexpr int64_t kInterestingInts[] = {
    0, 1, -1, 2, 3, 7, 8, 31, 32, 33, 64, 255, 256, 4096, 65536,
    int64_t{1} << 24, int64_t{1} << 30, (int64_t{1} << 31) - 1, int64_t{1} << 31,
    (int64_t{1} << 32) - 1, int64_t{1} << 32, (int64_t{1} << 32) + 1, int64_t{1} << 62,
    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};

// 1e39 is beyond float: inf once narrowed to a float array element.
constexpr double kInterestingFloats[] = {
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-5, 1e-300, 5e-324, 16.0, 17.0, 1e4, 1e39, 1e300,
    std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
    std::numeric_limits<double>::quiet_NaN()};

// Strings the readers parse: activations, dtypes, plan and predictor words, chat markers.
const char* const kInterestingStrings[] = {
    "", "llama", "silu", "gelu", "relu", "relu2", "drelu", "fatrelu:0.01", "fatrelu:nan",
    "fatrelu:inf", "fatrelu:", "shifted_relu:0.5", "shifted_relu:-inf", "none", "f16", "f32",
    "q8_0", "q4_0", "i32", "coverage", "latency", "nonzero", "threshold", "interleaved", "half",
    "<|im_start|>", "[INST]", "<s>", "\xe2\x96\x81", "<0x0A>", "\xff\xfe", "0123456789abcdef"};

// Keys of every artifact: adding one the input lacks reaches the readers' optional paths.
const char* const kKnownKeys[] = {
    "general.architecture", "general.name", "general.synthetic", "llama.context_length",
    "llama.dim", "llama.ffn_act", "llama.head_dim", "llama.n_ff", "llama.n_heads",
    "llama.n_kv_heads", "llama.n_layers", "llama.norm_act", "llama.rms_eps",
    "llama.rope_source_layout", "llama.rope_theta", "llama.tied_embeddings", "llama.vocab_size",
    "model.digest", "tokenizer.add_bos", "tokenizer.add_space_prefix", "tokenizer.bos_id",
    "tokenizer.chat_template", "tokenizer.eos_id", "tokenizer.model", "tokenizer.pad_id",
    "tokenizer.scores", "tokenizer.token_type", "tokenizer.tokens", "tokenizer.unk_id",
    "profile.tokens", "profile.context", "profile.datasets", "profile.target_sparsity",
    "predictor.n_layers", "predictor.dim", "predictor.n_ff", "predictor.rank",
    "predictor.logit_threshold", "predictor.threshold", "predictor.target_recall",
    "predictor.fire_rule", "predictor.recall", "predictor.train_samples", "plan.n_layers",
    "plan.n_ff", "plan.budget_bytes", "plan.context", "plan.batch", "plan.group_size",
    "plan.objective", "plan.hardware", "plan.kv_dtype", "plan.solver", "plan.gpu_tensors",
    "plan.bytes.workspace", "plan.bytes.ffn", "plan.bytes.total", "plan.expected.coverage"};
// clang-format on

template <typename T, size_t N>
const T& Pick(Rng& rng, const T (&values)[N]) {
  return values[rng() % N];
}

size_t Below(Rng& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

int64_t MutateInt(Rng& rng, int64_t v) {
  switch (rng() % 6) {
    case 0:
      return v + 1;
    case 1:
      return v - 1;
    case 2:
      return static_cast<int64_t>(static_cast<uint64_t>(v) * 2);
    case 3:
      return -v;
    case 4:
      return v ^ (int64_t{1} << (rng() % 64));
    default:
      return Pick(rng, kInterestingInts);
  }
}

double MutateFloat(Rng& rng, double v) {
  switch (rng() % 4) {
    case 0:
      return v * 2;
    case 1:
      return -v;
    case 2:
      return v + 1;
    default:
      return Pick(rng, kInterestingFloats);
  }
}

std::string MutateString(Rng& rng, std::string s) {
  // libFuzzer's byte mutators need at least one byte to work on.
  if (s.empty() || rng() % 2 == 0) return Pick(rng, kInterestingStrings);
  const size_t size = s.size();
  s.resize(size * 2 + 16);
  s.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s.data()), size, s.size()));
  return s;
}

template <typename T, typename F>
void MutateArray(Rng& rng, std::vector<T>& v, F mutate_element) {
  switch (rng() % 4) {
    case 0:  // one element more or fewer: the per-layer and per-token length checks
      if (!v.empty() && rng() % 2 == 0) {
        v.erase(v.begin() + static_cast<ptrdiff_t>(Below(rng, v.size())));
      } else {
        v.insert(v.begin() + static_cast<ptrdiff_t>(Below(rng, v.size() + 1)),
                 v.empty() ? T{} : v[Below(rng, v.size())]);
      }
      break;
    case 1:
      if (rng() % 4 == 0)
        v.clear();
      else
        v.resize(Below(rng, v.size() + 1));
      break;
    default:
      if (!v.empty()) {
        T& e = v[Below(rng, v.size())];
        e = mutate_element(e);
      }
      break;
  }
}

MetadataValue RandomValue(Rng& rng) {
  switch (rng() % 7) {
    case 0:
      return rng() % 2 == 0;
    case 1:
      return Pick(rng, kInterestingInts);
    case 2:
      return Pick(rng, kInterestingFloats);
    case 3:
      return std::string(Pick(rng, kInterestingStrings));
    case 4:
      return std::vector<int64_t>(Below(rng, 4), Pick(rng, kInterestingInts));
    case 5:
      return std::vector<float>(Below(rng, 4), static_cast<float>(Pick(rng, kInterestingFloats)));
    default:
      return std::vector<std::string>(Below(rng, 4), Pick(rng, kInterestingStrings));
  }
}

void MutateValue(Rng& rng, MetadataValue& value) {
  if (rng() % 10 == 0) {  // another type under the same key
    value = RandomValue(rng);
    return;
  }
  std::visit(
      [&rng](auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          v = !v;
        } else if constexpr (std::is_same_v<T, int64_t>) {
          v = MutateInt(rng, v);
        } else if constexpr (std::is_same_v<T, double>) {
          v = MutateFloat(rng, v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          v = MutateString(rng, v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          MutateArray(rng, v, [&rng](int64_t e) { return MutateInt(rng, e); });
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          MutateArray(rng, v, [&rng](float e) { return static_cast<float>(MutateFloat(rng, e)); });
        } else {
          MutateArray(rng, v, [&rng](const std::string& e) { return MutateString(rng, e); });
        }
      },
      value);
}

void MutateMetadata(Rng& rng, Metadata& m) {
  const uint32_t op = rng() % 10;
  if (op == 0 || m.size() == 0) {
    m.Set(Pick(rng, kKnownKeys), RandomValue(rng));
    return;
  }
  auto it = m.entries().begin();
  std::advance(it, static_cast<ptrdiff_t>(Below(rng, m.size())));
  const std::string key = it->first;
  if (op == 1) {
    m.Erase(key);
    return;
  }
  MetadataValue value = it->second;
  MutateValue(rng, value);
  m.Set(key, std::move(value));
}

// Resizes the bytes to what the shape and dtype need, when that is small: most mutated entries
// then stay consistent and reach the readers, the others exercise PiFile's size check.
void FitBytes(Rng& rng, TensorData& t) {
  if (rng() % 8 == 0 || !IsKnownDType(static_cast<uint32_t>(t.spec.dtype))) return;
  absl::StatusOr<uint64_t> bytes = TensorBytes(t.spec.dtype, t.spec.shape);
  if (bytes.ok() && *bytes <= kMaxTensorBytes) t.bytes.resize(*bytes);
}

uint64_t MutateDim(Rng& rng, uint64_t d) {
  switch (rng() % 5) {
    case 0:
      return d + 1;
    case 1:
      return d - 1;
    case 2:
      return d * 2;
    case 3:
      return d / 2;
    default:
      return static_cast<uint64_t>(Pick(rng, kInterestingInts));
  }
}

// Writes special values at aligned places: NaN and inf floats, ids and counts at their limits.
void PokeElements(Rng& rng, TensorData& t) {
  if (t.bytes.size() < 4) return;
  const size_t n = 1 + Below(rng, 4);
  for (size_t i = 0; i < n; ++i) {
    const size_t at = Below(rng, t.bytes.size() / 4) * 4;
    uint32_t raw;
    if (t.spec.dtype == DType::kI32) {
      raw = static_cast<uint32_t>(Pick(rng, kInterestingInts));
    } else {
      const float f = static_cast<float>(Pick(rng, kInterestingFloats));
      std::memcpy(&raw, &f, 4);
    }
    std::memcpy(t.bytes.data() + at, &raw, 4);
  }
}

std::string MutateName(Rng& rng, const PiImage& image, const std::string& name) {
  if (rng() % 2 == 0 && !image.tensors.empty()) {
    return image.tensors[Below(rng, image.tensors.size())].spec.name;  // a duplicate name
  }
  // Another layer's tensor: "blk.0.attn_q.weight" -> "blk.<n>.attn_q.weight".
  if (name.starts_with("blk.")) {
    const size_t dot = name.find('.', 4);
    if (dot != std::string::npos) {
      return absl::StrCat("blk.", MutateInt(rng, std::atoll(name.c_str() + 4)), name.substr(dot));
    }
  }
  return MutateString(rng, name);
}

void MutateTensor(Rng& rng, PiImage& image) {
  if (image.tensors.empty()) return;
  const size_t index = Below(rng, image.tensors.size());
  TensorData& t = image.tensors[index];
  switch (rng() % 9) {
    case 0: {
      const size_t d = Below(rng, t.spec.shape.size());
      if (!t.spec.shape.empty()) t.spec.shape[d] = MutateDim(rng, t.spec.shape[d]);
      FitBytes(rng, t);
      break;
    }
    case 1:  // a dimension more or fewer (0 and 5 dims included: PiFile's range check)
      if (rng() % 2 == 0 && !t.spec.shape.empty()) {
        t.spec.shape.erase(t.spec.shape.begin() +
                           static_cast<ptrdiff_t>(Below(rng, t.spec.shape.size())));
      } else {
        t.spec.shape.insert(
            t.spec.shape.begin() + static_cast<ptrdiff_t>(Below(rng, t.spec.shape.size() + 1)),
            1 + Below(rng, 2));
      }
      FitBytes(rng, t);
      break;
    case 2:
      t.spec.dtype = static_cast<DType>(rng() % 16 == 0 ? 7 + rng() % 4 : rng() % 7);
      FitBytes(rng, t);
      break;
    case 3:
      t.spec.name = MutateName(rng, image, t.spec.name);
      break;
    case 4:
      image.tensors.erase(image.tensors.begin() + static_cast<ptrdiff_t>(index));
      break;
    case 5: {
      TensorData copy = t;
      copy.spec.name = MutateName(rng, image, copy.spec.name);
      image.tensors.push_back(std::move(copy));
      break;
    }
    case 6:  // swap two tensors' names: right names, wrong shapes
      if (image.tensors.size() > 1) {
        std::swap(t.spec.name, image.tensors[Below(rng, image.tensors.size())].spec.name);
      }
      break;
    case 7:
      PokeElements(rng, t);
      break;
    default: {
      // libFuzzer's byte mutations on a window of the data, its size kept.
      if (t.bytes.empty()) break;
      const size_t window = std::min<size_t>(t.bytes.size(), 1 + Below(rng, 256));
      const size_t at = Below(rng, t.bytes.size() - window + 1);
      std::vector<uint8_t> part(t.bytes.begin() + at, t.bytes.begin() + at + window);
      part.resize(LLVMFuzzerMutate(part.data(), part.size(), part.size()));
      std::memcpy(t.bytes.data() + at, part.data(), part.size());
      break;
    }
  }
}

void MutateImage(Rng& rng, PiImage& image) {
  const int rounds = 1 + static_cast<int>(Below(rng, 3));
  for (int i = 0; i < rounds; ++i) {
    const uint32_t op = rng() % 16;
    if (op < 8) {
      MutateMetadata(rng, image.metadata);
    } else if (op < 15) {
      MutateTensor(rng, image);
    } else {
      image.kind = rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : 1 + rng() % 4;
    }
  }
}

// One 8-byte field of the header (after the magic and version) or of the index, set to an
// interesting value; the caller repairs the checksums.
void PokeRaw(Rng& rng, std::vector<uint8_t>& bytes) {
  PiHeader header;
  std::memcpy(&header, bytes.data(), sizeof(header));
  uint64_t lo = 12, hi = offsetof(PiHeader, reserved);  // kind .. tensor_count
  if (rng() % 2 == 0 && header.index_size >= 8) {
    lo = header.index_offset;
    hi = header.index_offset + header.index_size;
  }
  const uint64_t at = lo + Below(rng, hi - lo - 3);
  const int64_t v = rng() % 2 == 0 ? Pick(rng, kInterestingInts) : static_cast<int64_t>(rng());
  std::memcpy(bytes.data() + at, &v, std::min<uint64_t>(rng() % 2 == 0 ? 4 : 8, hi - at));
}

}  // namespace

void MutateMetadata(unsigned int seed, Metadata& metadata) {
  Rng rng(seed);
  MutateMetadata(rng, metadata);
}

size_t MutatePi(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  Rng rng(seed);
  PiImage image;
  if (rng() % 16 != 0 && DecodePiImage({data, size}, &image)) {
    MutateImage(rng, image);
    std::vector<uint8_t> out = EncodePiImage(image);
    if (rng() % 6 == 0) {
      PokeRaw(rng, out);
      RepairPiChecksums(out);
    }
    if (out.size() <= max_size) {
      std::memcpy(data, out.data(), out.size());
      return out.size();
    }
  }
  size = LLVMFuzzerMutate(data, size, max_size);
  if (rng() % 8 != 0) RepairPiChecksums({data, size});
  return size;
}

}  // namespace pinfer::fuzz
