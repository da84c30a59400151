#include "runtime/exec/backend.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "format/quant.h"
#include "runtime/common/cli_common.h"

namespace pinfer {

BackendBuffer& BackendBuffer::operator=(BackendBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    release_ = std::move(other.release_);
    other.release_ = nullptr;
  }
  return *this;
}

void BackendBuffer::Reset() {
  if (data_ != nullptr && release_) release_(data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
  release_ = nullptr;
}

namespace {

uint64_t& PartOf(PlanBytes& b, MemoryPart part) {
  switch (part) {
    case MemoryPart::kWorkspace:
      return b.workspace;
    case MemoryPart::kNorms:
      return b.norms;
    case MemoryPart::kAttention:
      return b.attention;
    case MemoryPart::kKv:
      return b.kv;
    case MemoryPart::kFfn:
      return b.ffn;
    case MemoryPart::kPredictor:
      return b.predictor;
    case MemoryPart::kOutput:
      break;
  }
  return b.output;
}

}  // namespace

absl::Status Backend::LayerNorm(const float*, const float*, const float*, int64_t, int64_t, float,
                                float*) {
  return absl::UnimplementedError(absl::StrCat(std::string(name()), " has no LayerNorm"));
}

absl::Status Backend::AddBias(const float*, int64_t, int64_t, float*) {
  return absl::UnimplementedError(absl::StrCat(std::string(name()), " has no bias add"));
}

absl::Status Backend::SupportsModel(const ModelConfig& config) const {
  if (config.llama_shaped()) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(
      "the ", std::string(name()), " backend runs llama-architecture layers only, not '",
      config.architecture, "' (LayerNorm, biases, learned positions): run it on the CPU, without ",
      "-ngl or a plan that puts layers on the GPU"));
}

void Backend::Account(MemoryPart part, int64_t bytes) {
  uint64_t& field = PartOf(used_, part);
  field = static_cast<uint64_t>(static_cast<int64_t>(field) + bytes);
}

absl::StatusOr<BackendBuffer> Backend::Allocate(size_t bytes, MemoryPart part) {
  if (bytes == 0) return BackendBuffer();
  absl::StatusOr<void*> raw = AllocateRaw(bytes);
  if (!raw.ok()) {
    return absl::Status(raw.status().code(),
                        absl::StrCat(std::string(name()), ": allocating ", FormatBytes(bytes), ": ",
                                     raw.status().message()));
  }
  Account(part, static_cast<int64_t>(bytes));
  return BackendBuffer(*raw, bytes, [this, part](void* data, size_t size) {
    FreeRaw(data);
    Account(part, -static_cast<int64_t>(size));
  });
}

absl::StatusOr<BackendMatrix> Backend::UploadWeight(const cpu::MatrixView& w,
                                                    std::span<const int32_t> rows,
                                                    MemoryPart part) {
  BackendMatrix m{w.dtype, rows.empty() ? w.rows : static_cast<int64_t>(rows.size()), w.cols,
                  w.row_bytes, w.data};
  if (host() && rows.empty()) return m;  // the mapped tensor itself
  for (int32_t r : rows) {
    if (r < 0 || r >= w.rows) {
      return absl::InvalidArgumentError(
          absl::StrCat("uploading row ", r, " of a weight of ", w.rows, " rows"));
    }
  }
  // Staged on the host in the order asked (a device copies from it in one transfer).
  const size_t bytes = static_cast<size_t>(m.bytes());
  std::vector<uint8_t> staging;
  const void* source = w.data;
  if (!rows.empty()) {
    staging.resize(bytes);
    for (size_t j = 0; j < rows.size(); ++j) {
      std::memcpy(staging.data() + j * w.row_bytes, w.Row(rows[j]), w.row_bytes);
    }
    source = staging.data();
  }
  // A device's kernels read q4_0, not the CPU's reordering of its blocks (q4_0x16, the same bytes
  // per row): it is undone here, once, for every device (the stand-in too, so that the CPU tests
  // exercise the conversion the GPU depends on).
  std::vector<uint8_t> reordered;
  if (m.dtype == DType::kQ4_0x16) {
    reordered.resize(bytes);
    ConvertQ4_0x16ToQ4_0(source, reordered.data(), static_cast<size_t>(m.rows),
                         static_cast<size_t>(m.cols));
    source = reordered.data();
    m.dtype = DType::kQ4_0;
  }
  absl::StatusOr<BackendBuffer> buffer = Allocate(bytes, part);
  if (!buffer.ok()) return buffer.status();
  if (absl::Status s = CopyIn(buffer->data(), source, bytes); !s.ok()) return s;
  // The staging vector goes away: the copy must have happened.
  if (absl::Status s = Synchronize(); !s.ok()) return s;
  m.data = buffer->data();
  weights_.push_back(*std::move(buffer));
  return m;
}

absl::StatusOr<const float*> Backend::UploadVector(const float* host, int64_t count,
                                                   MemoryPart part) {
  absl::StatusOr<BackendMatrix> m =
      UploadWeight(cpu::MakeMatrixView(DType::kF32, 1, count, host), {}, part);
  if (!m.ok()) return m.status();
  return m->floats();
}

std::string DescribeMemory(const PlanBytes& b) {
  std::string out;
  for (auto [name, bytes] :
       {std::pair{"workspace", b.workspace}, std::pair{"norms", b.norms},
        std::pair{"attention", b.attention}, std::pair{"kv", b.kv}, std::pair{"ffn", b.ffn},
        std::pair{"predictor", b.predictor}, std::pair{"output", b.output}}) {
    if (bytes == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", name, " ", FormatBytes(bytes));
  }
  absl::StrAppend(&out, out.empty() ? "" : "; ", "total ", FormatBytes(b.total()));
  return out;
}

}  // namespace pinfer
