// The output layer's row operations during training, for one precision mode, chosen once per
// Trainer (TrainConfig::precision) so the trainer's loops never ask which storage they work on:
//   fp32      fp32 weights and activations (the fp32 kernels);
//   bf16-act  fp32 weights, last-hidden activations rounded to bf16 once per batch;
//   bf16      bf16 weights, bf16 Adam moments, bf16 activations; updates computed in fp32 and
//             stored with stochastic rounding seeded from (row, step);
//   bf16-w    bf16 weights (stochastic rounding), fp32 Adam moments, bf16 activations.
// Gradients with respect to the activations (dH) are always fp32.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/network.h"
#include "engine/output_weights.h"

namespace glide::engine {

class OutputLayerOps {
 public:
  virtual ~OutputLayerOps() = default;
  // Once per batch, after the hidden layers: B rows of last-hidden activations (`stride` floats
  // apart), which must stay valid until the batch's backward pass is done.
  virtual void prepare(const float* H, std::size_t stride, std::size_t B) = 0;
  // z[q] = w_j . h[rows[q]] (no bias). Safe from many threads at once.
  virtual void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
                       float* z) const = 0;
  // Row j's gradient gw (dim floats of scratch) = sum_q coef[q] h[rows[q]], dH[rows[q]] +=
  // coef[q] w_j (dH has the activations' fp32 stride), then the row's optimizer update at Adam
  // step `t` (with its step size `step`). Safe from many threads on distinct rows.
  virtual void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef,
                        std::size_t count, float* dH, float* gw, std::uint64_t t,
                        const AdamStep& step) = 0;
  // forward() and backward() may defer the work of neurons every sample activates, to do it as
  // matrix products: finish_forward() after every forward() of the batch (it adds to z, which
  // may already hold the bias), finish_backward() after every backward() (it adds to dH, B
  // rows at the activations' fp32 stride, and updates those rows). Not thread-safe.
  virtual void finish_forward() = 0;
  virtual void finish_backward(float* dH) = 0;
  // Starts loading row j (its weights and bias; with `update`, its optimizer state too) into the
  // cache. The trainer calls it a few neurons ahead of the one it works on: the active rows are a
  // sparse third of a layer far larger than the caches, and without a hint the core takes their
  // misses nearly one row at a time (measured: the forward sweep of 232k rows 1.7-2.1x faster).
  virtual void prefetch(std::uint32_t j, bool update) const = 0;
  // How many neurons ahead the trainer prefetches (4 and 8 measured alike).
  static constexpr std::size_t kPrefetchAhead = 6;
};

// The ops for config.precision. Converts the network's output layer to the storage the mode
// needs (fp32 <-> bf16; Adam moments follow) and throws on an int8 network.
std::unique_ptr<OutputLayerOps> make_output_ops(Network& net, const TrainConfig& config);

// The output storage each training precision mode works on (the one place a mode is chosen).
OutputStorage training_storage(const TrainConfig& config);

// The ops of each storage (OutputMatrix::training_ops): fp32 rows with fp32 or (bf16-act) bf16
// activations; bf16 rows with their bf16 or fp32 moments. `W` / `R` must hold Adam moments.
std::unique_ptr<OutputLayerOps> make_f32_ops(ParamMatrix& W, const ParamVector& bias,
                                             const TrainConfig& config);
std::unique_ptr<OutputLayerOps> make_bf16_ops(Bf16Rows& R, const ParamVector& bias,
                                              const TrainConfig& config);

}  // namespace glide::engine
