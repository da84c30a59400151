#include "tools/train_predictor/mlp_trainer.h"

// The LibTorch headers this needs, not torch/torch.h: each one less is compile time saved.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

#include "absl/strings/str_cat.h"

namespace pinfer {
namespace {

namespace F = torch::nn::functional;

// U(-bound, bound) from our own generator, so that the initial weights depend only on the seed.
std::vector<float> Uniform(SplitMix64& g, size_t n, double bound) {
  std::vector<float> v(n);
  for (float& x : v) {
    const double u = static_cast<double>(g.Next() >> 11) * 0x1.0p-53;  // [0, 1)
    x = static_cast<float>((2 * u - 1) * bound);
  }
  return v;
}

torch::Tensor Parameter(const std::vector<float>& values, std::vector<int64_t> shape,
                        const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(values.data()), shape, torch::kFloat32)
      .clone()
      .to(device)
      .set_requires_grad(true);
}

std::vector<float> ToVector(const torch::Tensor& t) {
  const torch::Tensor cpu = t.detach().to(torch::kCPU).contiguous();
  return std::vector<float>(cpu.data_ptr<float>(), cpu.data_ptr<float>() + cpu.numel());
}

torch::Tensor Constant(const std::vector<float>& values, const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(values.data()), {static_cast<int64_t>(values.size())},
                          torch::kFloat32)
      .clone()
      .to(device);
}

// The MLP on standardized inputs (x − mean) / std, which makes the optimization indifferent to
// the scale of each input feature; Export() folds the standardization into W1 and b1.
class LayerModel {
 public:
  LayerModel(const MlpWeights& init, const std::vector<float>& mean, const std::vector<float>& std,
             const torch::Device& device, bool biases)
      : biases_(biases),
        w1_(Parameter(init.w1, {init.rank, init.dim}, device)),
        b1_(biases ? Parameter(init.b1, {init.rank}, device) : Constant(init.b1, device)),
        w2_(Parameter(init.w2, {init.n_ff, init.rank}, device)),
        b2_(biases ? Parameter(init.b2, {init.n_ff}, device) : Constant(init.b2, device)),
        mean_(mean),
        std_(std),
        mean_t_(Constant(mean, device)),
        std_t_(Constant(std, device)) {}

  torch::Tensor Logits(const torch::Tensor& x) const {
    const torch::Tensor z = (x - mean_t_) / std_t_;
    return torch::addmm(b2_, torch::relu(torch::addmm(b1_, z, w1_.t())), w2_.t());
  }
  std::vector<torch::Tensor> parameters() const {
    if (!biases_) return {w1_, w2_};
    return {w1_, b1_, w2_, b2_};
  }
  // W1' = W1 / std (per column), b1' = b1 − W1' · mean: the same function of raw inputs.
  MlpWeights Export(int64_t dim, int64_t rank, int64_t n_ff) const {
    MlpWeights w{dim, rank, n_ff, ToVector(w1_), ToVector(b1_), ToVector(w2_), ToVector(b2_)};
    for (int64_t r = 0; r < rank; ++r) {
      double shift = 0;
      for (int64_t c = 0; c < dim; ++c) {
        float& v = w.w1[static_cast<size_t>(r * dim + c)];
        v /= std_[static_cast<size_t>(c)];
        shift += static_cast<double>(v) * mean_[static_cast<size_t>(c)];
      }
      w.b1[static_cast<size_t>(r)] -= static_cast<float>(shift);
    }
    return w;
  }

 private:
  bool biases_;
  torch::Tensor w1_, b1_, w2_, b2_;
  std::vector<float> mean_, std_;
  torch::Tensor mean_t_, std_t_;
};

// Cosine decay from the full rate to 5% of it over the whole run (`progress` in [0, 1]).
double LearningRate(double base, double progress) {
  return base * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * std::min(progress, 1.0))));
}

// Initial weights: LibTorch's Linear default ranges (±1/sqrt(fan_in)), drawn from our generator;
// b2 starts at each neuron's weighted base rate, log(w·f / (1 − f)), where the loss's optimum
// for an uninformative input lies, so that training starts by learning the input, not the rate.
MlpWeights InitialWeights(int64_t dim, int64_t rank, int64_t n_ff, const std::vector<double>& rate,
                          const std::vector<double>& pos_weight, uint64_t seed) {
  SplitMix64 g(seed);
  MlpWeights w{dim, rank, n_ff, {}, {}, {}, {}};
  const double in1 = 1 / std::sqrt(static_cast<double>(dim));
  const double in2 = 1 / std::sqrt(static_cast<double>(rank));
  w.w1 = Uniform(g, static_cast<size_t>(rank * dim), in1);
  w.b1 = Uniform(g, static_cast<size_t>(rank), in1);
  w.w2 = Uniform(g, static_cast<size_t>(n_ff * rank), in2);
  w.b2.resize(static_cast<size_t>(n_ff));
  for (size_t i = 0; i < w.b2.size(); ++i) {
    const double f = std::clamp(rate[i], 1e-4, 1 - 1e-4);
    w.b2[i] = static_cast<float>(std::log(pos_weight[i] * f / (1 - f)));
  }
  return w;
}

struct Batch {
  torch::Tensor x, y;
};

Batch ToTensors(const SampleBlock& block, std::vector<float>& targets,
                const torch::Device& device) {
  targets.resize(static_cast<size_t>(block.count * block.n_ff));
  UnpackMasks(block.masks.data(), block.count, block.n_ff, targets.data());
  torch::Tensor x = torch::from_blob(const_cast<float*>(block.inputs.data()),
                                     {block.count, block.dim}, torch::kFloat32);
  torch::Tensor y = torch::from_blob(targets.data(), {block.count, block.n_ff}, torch::kFloat32);
  if (device.is_cpu()) return {x, y};  // the blobs outlive the step that uses them
  return {x.to(device), y.to(device)};
}

absl::StatusOr<MlpWeights> Train(const LayerSampleStream& data, const MlpTrainOptions& options,
                                 const std::function<void(const EpochReport&)>& on_epoch) {
  const int64_t dim = data.dim(), n_ff = data.n_ff(), rank = options.rank;
  const torch::Device device = options.use_cuda ? torch::Device(torch::kCUDA) : torch::kCPU;

  std::vector<double> rate(static_cast<size_t>(n_ff)), pos_weight(static_cast<size_t>(n_ff));
  std::vector<float> pos_weight_f(static_cast<size_t>(n_ff));
  const double n = static_cast<double>(data.train_samples());
  for (size_t i = 0; i < rate.size(); ++i) {
    const double fired = static_cast<double>(data.train_fire_counts()[i]);
    rate[i] = fired / n;
    pos_weight[i] = fired > 0 ? std::clamp((n - fired) / fired, 1.0, options.max_pos_weight) : 1.0;
    pos_weight_f[i] = static_cast<float>(pos_weight[i]);
  }
  const torch::Tensor pos_weight_t =
      torch::from_blob(pos_weight_f.data(), {n_ff}, torch::kFloat32).clone().to(device);
  const F::BinaryCrossEntropyWithLogitsFuncOptions loss_options =
      F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight_t);

  MlpWeights init = InitialWeights(
      dim, rank, n_ff, rate, pos_weight,
      MixSeed(options.seed, static_cast<uint64_t>(data.layer()), static_cast<uint64_t>(rank)));
  std::vector<float> mean = data.input_mean(), scale = data.input_std();
  if (!options.biases) {
    std::fill(init.b1.begin(), init.b1.end(), 0.0f);
    std::fill(init.b2.begin(), init.b2.end(), 0.0f);
    // Without biases the inputs cannot be centred, so scale them by their root mean square
    // instead of their standard deviation: a feature that is nearly constant (a model's massive
    // activation, pi-synth's bias channel) has a tiny std, and x/std would be in the thousands,
    // swamp every hidden unit and kill them all in the first steps (a predictor stuck at logit 0,
    // predicting every neuron). x/rms keeps every feature of order one.
    for (size_t c = 0; c < scale.size(); ++c) {
      scale[c] = std::sqrt(mean[c] * mean[c] + scale[c] * scale[c]);
    }
    std::fill(mean.begin(), mean.end(), 0.0f);
  }
  LayerModel model(init, mean, scale, device, options.biases);
  torch::optim::Adam optimizer(model.parameters(),
                               torch::optim::AdamOptions(options.learning_rate));

  MlpWeights best;
  double best_loss = INFINITY;
  std::vector<float> targets;
  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t seen = 0;
    absl::Status s = data.ForEachTrainBatch(
        epoch, options.batch_size, [&](const SampleBlock& block) -> absl::Status {
          const Batch batch = ToTensors(block, targets, device);
          const double progress =
              (static_cast<double>(epoch - 1) + static_cast<double>(seen) / n) / options.epochs;
          optimizer.param_groups()[0].options().set_lr(
              LearningRate(options.learning_rate, progress));
          optimizer.zero_grad();
          torch::Tensor loss =
              F::binary_cross_entropy_with_logits(model.Logits(batch.x), batch.y, loss_options);
          loss.backward();
          optimizer.step();
          loss_sum += loss.item<double>() * static_cast<double>(block.count);
          seen += block.count;
          return absl::OkStatus();
        });
    if (!s.ok()) return s;

    EpochReport report;
    report.epoch = epoch;
    report.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    double validation_loss = 0;
    int64_t validated = 0, fired = 0, predicted = 0, hits = 0;
    {
      torch::NoGradGuard no_grad;
      s = data.ForEachValidationBatch(1024, [&](const SampleBlock& block) -> absl::Status {
        const Batch batch = ToTensors(block, targets, device);
        const torch::Tensor logits = model.Logits(batch.x);
        validation_loss +=
            F::binary_cross_entropy_with_logits(logits, batch.y, loss_options).item<double>() *
            static_cast<double>(block.count);
        validated += block.count;
        const torch::Tensor said = logits >= 0;
        const torch::Tensor truth = batch.y > 0.5;
        fired += truth.sum().item<int64_t>();
        predicted += said.sum().item<int64_t>();
        hits += (said & truth).sum().item<int64_t>();
        return absl::OkStatus();
      });
    }
    if (!s.ok()) return s;
    report.validation_loss = validation_loss / std::max<int64_t>(validated, 1);
    report.recall = fired > 0 ? static_cast<double>(hits) / fired : 1.0;
    report.precision = predicted > 0 ? static_cast<double>(hits) / predicted : 1.0;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!std::isfinite(report.train_loss)) {
      return absl::InternalError(absl::StrCat("layer ", data.layer(), ", rank ", rank,
                                              ": the training loss diverged at epoch ", epoch,
                                              " (try a lower --learning-rate)"));
    }
    if (report.validation_loss < best_loss) {
      best_loss = report.validation_loss;
      best = model.Export(dim, rank, n_ff);
    }
    if (on_epoch) on_epoch(report);
  }
  if (best.w1.empty()) {
    return absl::InternalError(absl::StrCat("layer ", data.layer(), ", rank ", rank,
                                            ": the validation loss was never finite"));
  }
  return best;
}

}  // namespace

absl::StatusOr<MlpWeights> TrainMlp(const LayerSampleStream& data, const MlpTrainOptions& options,
                                    const std::function<void(const EpochReport&)>& on_epoch) {
  // LibTorch reports errors with exceptions; none may cross this library's boundary.
  std::string what;
  try {
    return Train(data, options, on_epoch);
  } catch (const c10::Error& e) {
    what = e.what_without_backtrace();
  } catch (const std::exception& e) {
    what = e.what();
  }
  what = what.substr(0, what.find('\n'));  // errors are one line
  return absl::InternalError(absl::StrCat("layer ", data.layer(), ": LibTorch: ", what));
}

bool TorchCudaAvailable() { return torch::cuda::is_available(); }

std::string TorchVersion() { return TORCH_VERSION; }

void SetTorchThreads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace pinfer
