// The Llama-family forward pass, split into what is shared and what is per sequence.
//
//   Model     (runtime/model)  the mapped weights, read-only; one per process.
//   Executor  runs the forward pass: the model, the batch size for prompt processing and one
//             LayerFfn per layer (layer_ffn.h: dense by default; sparse and hybrid execution are
//             other parts and selections of the same mechanism). Shared by all sessions.
//   Session   (session.h) one sequence: its SequenceState (KV cache), the tokens
//             evaluated so far and the accounting. pi-server runs N sessions over one Executor.
//
// A layer, for a batch of n tokens at positions [pos0, pos0 + n) (Executor::Forward):
//   x += attention(norm(x))     norm: rmsnorm · attn_norm, then the norm activation (none, or a
//                               shifted ReLU); q, k, v, RoPE, the KV cache, causal grouped-query
//                               attention, the output projection
//   x += ffn[l](norm(x))        norm: rmsnorm · ffn_norm, then the norm activation
// then logits = output · rmsnorm(x) · output_norm (no norm activation on the final norm).
// Other architectures (model_config.h) change the parts, not the shape of the pass: OPT adds its
// learned position rows to the embeddings instead of RoPE, norms with LayerNorm (+ bias), adds the
// biases of q/k/v/output after their products and fc2's once per token after the FFN (fc1's is the
// FFN's own, per neuron: ffn_rows.h).
// Prompts are evaluated in batches of up to batch_size tokens (MatMul kernels), decode one token at
// a time (the same path with n = 1, where the kernels are matrix-vector products). A pass may hold
// several sequences (a server's slots: one token of each generating one, a chunk of a prompt):
// the weights are read once for all their rows, attention runs per sequence (BatchEntry).
//
// Placement (SetPlacement, from the plan: placement_plan.h): per layer, its attention (the norm, q/k/v/o,
// RoPE, its KV cache) and the FFN's norm run on the host or on the device backend (backend.h); the
// final norm and the classifier too. The residual stream stays where the previous layer left it and
// moves once when the place changes; a layer on the device hands its FFN the device-resident normed
// input (the FFN's device part reads it there, its CPU part gets one download of it and its partial
// sum is uploaded and added on the device: one synchronisation per layer). A whole model on the
// device comes back to the host only for the logits. Without a placement everything is on the host.
//
// Threads: the kernels parallelise inside each call (OpenMP, cpu::SetThreads), so forward passes
// run one at a time per process; sessions hold state, not threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/exec/backend.h"
#include "runtime/exec/cpu_backend.h"
#include "runtime/exec/ffn_rows.h"
#include "runtime/exec/forward_observer.h"
#include "runtime/exec/kv_cache.h"
#include "runtime/exec/layer_ffn.h"
#include "runtime/exec/memory_budget.h"
#include "runtime/model/model.h"

namespace pinfer {

struct ExecutorOptions {
  int64_t batch_size = 256;  // prompt tokens per forward pass
};

// Which logits a forward pass returns.
enum class Logits {
  kNone,  // none (profiling, filling the cache)
  kLast,  // the last token's: [vocab]
  kAll,   // every token's: [n, vocab]
};

// What forward passes read and how long they took, summed since the last ResetStats().
struct ForwardStats {
  int64_t tokens = 0;         // tokens evaluated
  int64_t passes = 0;         // forward passes (batches)
  uint64_t weight_bytes = 0;  // weight bytes read: each matrix once per pass, as the kernels do
  uint64_t kv_bytes = 0;      // KV cache bytes read by attention (in the cache's type)
  double seconds = 0.0;

  ForwardStats& operator+=(const ForwardStats& other);
  ForwardStats operator-(const ForwardStats& other) const;
  // (weight + KV bytes) per second, in GB/s (10^9).
  double EffectiveGBps() const;
};

// One sequence's memory for the forward pass: its KV cache, on the host for the layers whose
// attention runs there and on the device for the others (Executor::CreateSequenceState).
struct SequenceState {
  int64_t context = 0;  // positions the KV cache holds
  KvCache kv;           // the host layers' keys and values, in the cache's type (kv_cache.h)
  std::unique_ptr<KvStore> device_kv;  // the device layers' (f16), or null when there are none

  // Every layer's KV cache on the host, sized for `config`, of `cache_type` (f32, f16 or q8_0);
  // InvalidArgument for a cache type the model cannot use, ResourceExhausted (naming the KV bytes)
  // when memory runs out. An executor with device layers wants CreateSequenceState's.
  static absl::StatusOr<SequenceState> Create(const ModelConfig& config, int64_t context,
                                              DType cache_type = kDefaultKvCacheType);
  // The bytes Create allocates, once every position is used.
  static uint64_t Bytes(const ModelConfig& config, int64_t context,
                        DType cache_type = kDefaultKvCacheType);
};

// The scratch of one forward pass: the rows of every sequence of the batch, concatenated. Shared
// by the sequences that take turns in passes (a server's slots share one, sized for its step's
// token budget), since passes run one at a time.
struct BatchState {
  int64_t capacity = 0;          // tokens per pass, all sequences together
  std::vector<float> x;          // [capacity, dim]    the residual stream
  std::vector<float> normed;     // [capacity, dim]
  std::vector<float> q;          // [capacity, q_dim]
  std::vector<float> k;          // [capacity, kv_dim] this pass's keys, before the caches
  std::vector<float> v;          // [capacity, kv_dim] and values
  std::vector<float> attention;  // [capacity, q_dim]
  std::vector<float> projected;  // [capacity, dim]
  std::vector<float> logits;     // [rows, vocab] when several sequences want logits (grown)
  FfnWorkspace ffn;

  // ResourceExhausted when memory runs out.
  static absl::StatusOr<BatchState> Create(const ModelConfig& config, int64_t capacity);
  static uint64_t Bytes(const ModelConfig& config, int64_t capacity);
};

// One sequence's share of a forward pass: `tokens` at positions [pos0, pos0 + n) of `sequence`.
// Where the plan puts the dense parts of the model (Executor::SetPlacement).
struct DensePlacement {
  std::shared_ptr<Backend> device;           // null: everything on the host
  std::vector<uint8_t> attention_on_device;  // [n_layers] (empty: none)
  bool classifier_on_device = false;         // the final norm and the classifier
};

struct BatchEntry {
  SequenceState* sequence = nullptr;
  int64_t pos0 = 0;
  std::span<const int32_t> tokens;
  Logits logits = Logits::kNone;
  float* logits_out = nullptr;          // [n, vocab] (kAll), [vocab] (kLast) or null
  ForwardObserver* observer = nullptr;  // may be null: sees this sequence's rows of each FFN
  // Gets this sequence's tokens, a pass, its KV bytes, and its share (by tokens) of the pass's
  // weight bytes and time: the weights are read once for the whole batch.
  ForwardStats* stats = nullptr;
};

class Executor {
 public:
  // Every layer dense: one CPU part computing all neurons, everything on the host.
  explicit Executor(const Model& model, const ExecutorOptions& options = {});
  ~Executor();

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  int64_t batch_size() const { return options_.batch_size; }

  // Installs one FFN per layer (BuildFfnLayers). The executor must not run while it changes.
  absl::Status SetFfnLayers(std::vector<std::unique_ptr<LayerFfn>> layers);
  LayerFfn& ffn(int64_t layer) const { return *ffn_[static_cast<size_t>(layer)]; }

  // Uploads what `placement` puts on its device (through Backend::UploadWeight) and runs those
  // parts there from now on. Before any sequence is created: a sequence's KV cache follows the
  // placement (CreateSequenceState). InvalidArgument for a placement of another model's layers.
  absl::Status SetPlacement(DensePlacement placement);
  bool attention_on_device(int64_t layer) const {
    return places_[static_cast<size_t>(layer)].on_device;
  }
  bool classifier_on_device() const { return classifier_.on_device; }
  // Layers whose KV cache is host memory (all of them without a placement).
  int64_t host_kv_layers() const { return host_slots_; }
  // The device backend, or null.
  const Backend* device() const { return device_.get(); }
  // Host <-> device transfers and synchronisations of the passes so far (tests, reports).
  struct TransferCounts {
    int64_t uploads = 0;    // host -> device copies of hidden states (x, a CPU part's partial)
    int64_t downloads = 0;  // device -> host copies (x, a CPU part's input, logits)
    int64_t synchronisations = 0;
    double wait_seconds = 0.0;  // the host blocked in those synchronisations
  };
  TransferCounts transfers() const { return *transfers_; }

  // Allocates the device's activations for passes of up to `tokens` tokens now (a session does it
  // when it is created), so that what the device holds is known before the first pass.
  absl::Status ReserveDevice(int64_t tokens);

  // A sequence of `context` positions for this placement: the host layers' KV cache in
  // `cache_type`, the device layers' in the device's memory (f16).
  absl::StatusOr<SequenceState> CreateSequenceState(int64_t context,
                                                    DType cache_type = kDefaultKvCacheType) const;
  int64_t n_layers() const { return static_cast<int64_t>(ffn_.size()); }

  // One forward pass over the entries (distinct sequences, all their tokens together at most
  // the batch's capacity): every weight product runs once over the concatenated rows (q, k, v and
  // the output projection, each layer's FFN with n = all the tokens, the classifier over the rows
  // whose logits are wanted); RoPE, the KV writes and attention run per sequence, against its own
  // cache at its own positions. A single sequence is the case of one entry.
  absl::Status Forward(BatchState& batch, std::span<const BatchEntry> entries) const;

  // The context shift of a sequence holding positions [0, n_past): drops positions
  // [keep, keep + discard) from the KV cache of every layer, moves the later rows down by
  // `discard` and re-rotates their keys to their new positions (RoPE is a rotation: the stored key
  // rotated by -discard positions is the key its hidden state gives at the new position). The
  // moved entries keep what they saw of the dropped tokens; that is the approximation of a
  // context shift. The host layers' and the device layers' caches shift alike (the device's
  // through the backend: a GPU downloads, shifts and uploads, it is rare). Keys of an f16 or q8_0
  // cache are decoded, rotated and encoded again (KvCache::Shift).
  absl::Status ShiftCache(SequenceState& state, int64_t n_past, int64_t keep,
                          int64_t discard) const;

 private:
  // A layer's place: its backend and its dense weights there.
  struct LayerPlace {
    Backend* backend = nullptr;
    bool on_device = false;
    int64_t kv_slot = 0;  // its slot in the host's or the device's KV store
    const float* attn_norm = nullptr;
    const float* ffn_norm = nullptr;
    BackendMatrix q, k, v, o;
    // Null where the architecture has none (model_config.h).
    const float* attn_norm_b = nullptr;
    const float* ffn_norm_b = nullptr;
    const float *q_b = nullptr, *k_b = nullptr, *v_b = nullptr, *o_b = nullptr;
    const float* ffn_down_b = nullptr;
  };
  struct ClassifierPlace {
    Backend* backend = nullptr;
    bool on_device = false;
    const float* norm = nullptr;
    const float* norm_b = nullptr;  // LayerNorm only
    BackendMatrix output;
  };
  // The activations of a pass where a place keeps them: the BatchState's on the host, the device
  // scratch's on the device.
  struct PassBuffers {
    float* x;
    float* normed;
    float* q;
    float* k;
    float* v;
    float* attention;
    float* projected;
    float* partial;  // device only: the host FFN parts' partial sum, uploaded (null on the host)
  };
  struct DeviceScratch;

  absl::StatusOr<PassBuffers> Buffers(bool on_device, BatchState& batch, int64_t n) const;
  // Waits for the device, counted and timed in transfers().
  absl::Status Synchronize() const;
  // Moves the residual stream's n rows to the place of the next step, if it is not there.
  absl::Status MoveResidual(BatchState& batch, bool& on_device, bool to_device, int64_t n) const;
  // out = the model's norm of the rows rows of x: rmsnorm(x) · weight, or LayerNorm · weight + bias.
  absl::Status Norm(Backend& backend, const float* x, int64_t rows, const float* weight,
                    const float* bias, float* out) const;
  // normed = norm_act(norm(x)) for the n rows; adds the bytes read.
  absl::Status Normalize(const LayerPlace& place, const PassBuffers& b, int64_t n,
                         const float* weight, const float* bias, uint64_t& bytes) const;
  // x += attention(normed) for layer l over the n rows of the entries (`add` false: the output is
  // left in `projected`, for a parallel layer); adds the weight bytes.
  absl::Status Attention(const LayerPlace& place, const PassBuffers& b,
                         std::span<const BatchEntry> entries, int64_t n, bool add,
                         uint64_t& bytes) const;
  // x += ffn[l](normed) over all n rows; tells each entry's observer of its rows.
  absl::Status Ffn(const LayerPlace& place, const PassBuffers& b, BatchState& batch,
                   std::span<const BatchEntry> entries, int64_t n, int64_t l,
                   uint64_t& bytes) const;
  // The wanted rows' logits = output · rmsnorm(x) · output_norm, in one product.
  absl::Status Classify(BatchState& batch, bool& on_device, std::span<const BatchEntry> entries,
                        int64_t n, uint64_t& bytes) const;
  // Whether a sequence's KV stores fit this placement (the message says what differs).
  absl::Status CheckSequence(const SequenceState& sequence) const;

  const Model& model_;
  ExecutorOptions options_;
  std::vector<std::unique_ptr<LayerFfn>> ffn_;
  std::unique_ptr<CpuBackend> host_;
  std::shared_ptr<Backend> device_;
  std::vector<LayerPlace> places_;
  ClassifierPlace classifier_;
  int64_t host_slots_ = 0, device_slots_ = 0;
  std::unique_ptr<DeviceScratch> scratch_;  // the device's activations, grown to a pass
  std::unique_ptr<TransferCounts> transfers_ = std::make_unique<TransferCounts>();
};

}  // namespace pinfer
