#include "engine/output_ops.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/error.h"
#include "engine/gemm_kernels.h"
#include "engine/kernels_bf16.h"
#include "engine/optimizer_step.h"

namespace glide::engine {

namespace {

// SGD on a bf16 row: w -= lr g, stochastically rounded.
void sgd_bf16(bf16* w, const float* g, std::size_t n, float lr, std::uint32_t seed) {
  for (std::size_t i = 0; i < n; ++i)
    w[i] = f32_to_bf16_sr(bf16_to_f32(w[i]) - lr * g[i],
                          sr_noise(seed, static_cast<std::uint32_t>(i)));
}

// Adagrad on a bf16 row whose squared-gradient sums are bf16 (v16) or fp32 (v32), computed in
// fp32; what is stored in bf16 is stochastically rounded.
void adagrad_bf16(bf16* w, bf16* v16, float* v32, const float* g, std::size_t n, const AdamStep& s,
                  std::uint32_t seed) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t at = static_cast<std::uint32_t>(i);
    const float v = (v16 ? bf16_to_f32(v16[i]) : v32[i]) + g[i] * g[i];
    if (v16)
      v16[i] = f32_to_bf16_sr(v, sr_noise(seed ^ 0x5bd1e995u, at));
    else
      v32[i] = v;
    w[i] = f32_to_bf16_sr(bf16_to_f32(w[i]) - s.lr * g[i] / (std::sqrt(v) + s.eps),
                          sr_noise(seed, at));
  }
}

// Neurons that every sample of the batch activates (its labels and shared negatives: ~2,900 at
// 670k labels, ~1% of the rows a batch touches but ~75% of its pairs). Row by row, each one's
// forward pass reads all B activation rows and reduces B dot products, and its backward pass
// reads them again and adds coef[s] w_j to all B rows of dH: ~1 GB of L2 traffic a batch
// (measured 15-25 ms of a 1-thread batch). Together they are three dense matrix products
// (z = W H^T, dH += C^T W, gw = C H: 256 x 2,900 x 128 each), so forward() and backward() only
// note these neurons and finish_forward() / finish_backward() run the products (gemm_kernels.h:
// on AMX tiles where the CPU has them). The updates of these rows then follow the
// products (the products use the pre-update weights, as the row-by-row path does).
class SharedRows {
 public:
  // H: the B activation rows (`stride` apart) exactly as the output layer sees them, in fp32.
  void prepare(const float* H, std::size_t stride, std::size_t B, std::size_t dim) {
    H_ = H;
    hstride_ = stride;
    B_ = B;
    dim_ = dim;
    if (iota_.size() != B) {
      iota_.resize(B);
      std::iota(iota_.begin(), iota_.end(), 0u);
    }
    deferred_.store(0, std::memory_order_relaxed);
    fwd_.clear();
    Ht_.resize(dim * B);  // transposed: the forward product streams it row by row
    for (std::size_t s = 0; s < B; ++s)
      for (std::size_t d = 0; d < dim; ++d) Ht_[d * B + s] = H[s * stride + d];
  }
  // True for a neuron whose pairs are all the batch's samples in order (every shared neuron).
  bool all_samples(const std::uint32_t* rows, std::size_t count) const {
    return count == B_ && B_ >= 4 && std::memcmp(rows, iota_.data(), count * sizeof(*rows)) == 0;
  }
  // Takes over neuron j's forward pass when every sample activates it, up to kMaxDeferred
  // neurons a batch: the products keep copies of their rows and coefficients (a dense output
  // layer of 670k neurons would need ~1 GB; the rest take the row-by-row path).
  bool defer_forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count, float* z) {
    if (!all_samples(rows, count) ||
        deferred_.fetch_add(1, std::memory_order_relaxed) >= kMaxDeferred)
      return false;
    std::fill(z, z + B_, 0.0f);  // the trainer adds the bias, finish_forward the dot products
    lists_.local().forward.emplace_back(j, z);
    return true;
  }
  // Takes over neuron j's backward pass and update if finish_forward computed its forward pass.
  bool defer_backward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
                      const float* coef, std::uint64_t t, const AdamStep& step) {
    if (!all_samples(rows, count) ||
        !std::binary_search(fwd_.begin(), fwd_.end(), std::pair<std::uint32_t, float*>(j, nullptr),
                            [](const auto& a, const auto& b) { return a.first < b.first; }))
      return false;
    List& L = lists_.local();
    L.backward.emplace_back(j, coef);
    L.t = t;
    L.step = step;
    L.done = false;
    return true;
  }
  // expand(j, out): row j's dim weights in fp32.
  template <class Expand>
  void finish_forward(Expand&& expand) {
    gather(&List::forward, fwd_);
    const std::size_t K = fwd_.size();
    if (!K) return;
    W_.resize(K * dim_);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, K, 64), [&](const auto& r) {
      for (std::size_t k = r.begin(); k < r.end(); ++k) expand(fwd_[k].first, W_.data() + k * dim_);
    });
    Z_.assign(K * B_, 0.0f);
    // Z[k][s] = sum_d W[k][d] Ht[d][s]; then into each neuron's slots (which hold its bias).
    const GemmKernels& gk = gemm_kernels();
    gk.pack_b(Ht_.data(), B_, 1, dim_, B_, packed_);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, K, 32), [&](const auto& r) {
      gk.gemm(W_.data() + r.begin() * dim_, dim_, 1, r.size(), packed_, Z_.data() + r.begin() * B_,
              B_);
      for (std::size_t k = r.begin(); k < r.end(); ++k)
        for (std::size_t s = 0; s < B_; ++s) fwd_[k].second[s] += Z_[k * B_ + s];
    });
  }
  // update(j, gw, t, step): the optimizer step of row j.
  template <class Update>
  void finish_backward(float* dH, Update&& update) {
    std::vector<std::pair<std::uint32_t, const float*>> bwd;
    gather(&List::backward, bwd);
    std::uint64_t t = 0;
    AdamStep step{};
    for (List& L : lists_)
      if (!L.done) t = L.t, step = L.step;
    for (List& L : lists_) L.done = true;
    const std::size_t K = bwd.size();
    if (!K) return;
    if (K != fwd_.size()) fail("output layer: shared neurons differ between passes");
    for (std::size_t k = 0; k < K; ++k)
      if (bwd[k].first != fwd_[k].first) fail("output layer: shared neurons differ between passes");
    C_.resize(K * B_);
    for (std::size_t k = 0; k < K; ++k) std::copy_n(bwd[k].second, B_, C_.data() + k * B_);
    // dH[s] += sum_k C[k][s] W[k] (pre-update weights).
    const GemmKernels& gk = gemm_kernels();
    gk.pack_b(W_.data(), dim_, 1, K, dim_, packed_);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B_, 32), [&](const auto& r) {
      gk.gemm(C_.data() + r.begin(), 1, B_, r.size(), packed_, dH + r.begin() * hstride_, hstride_);
    });
    // gw[k] = sum_s C[k][s] H[s], then row k's update.
    G_.assign(K * dim_, 0.0f);
    gk.pack_b(H_, hstride_, 1, B_, dim_, packed_);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, K, 32), [&](const auto& r) {
      gk.gemm(C_.data() + r.begin() * B_, B_, 1, r.size(), packed_, G_.data() + r.begin() * dim_,
              dim_);
      for (std::size_t k = r.begin(); k < r.end(); ++k)
        update(bwd[k].first, G_.data() + k * dim_, t, step);
    });
  }

 private:
  using Entries = std::vector<std::pair<std::uint32_t, float*>>;
  struct List {
    Entries forward;
    std::vector<std::pair<std::uint32_t, const float*>> backward;
    std::uint64_t t = 0;
    AdamStep step{};
    bool done = true;
  };
  // All threads' entries of one pass in neuron order (threads take neurons in any order).
  template <class Member, class Out>
  void gather(Member member, Out& out) {
    out.clear();
    for (List& L : lists_) {
      auto& v = L.*member;
      out.insert(out.end(), v.begin(), v.end());
      v.clear();
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }

  static constexpr std::size_t kMaxDeferred = 65536;
  const float* H_ = nullptr;
  std::size_t hstride_ = 0, B_ = 0, dim_ = 0;
  std::atomic<std::size_t> deferred_{0};
  std::vector<std::uint32_t> iota_;
  std::vector<float> Ht_, W_, Z_, C_, G_;
  PackedB packed_;  // the product's right-hand operand
  Entries fwd_;
  tbb::enumerable_thread_specific<List> lists_;
};

// Prefetches `bytes` from p, one hint per cache line.
inline void prefetch_bytes(const void* p, std::size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
}

// Which optimizer state an update reads besides the weights.
inline bool reads_m(Optimizer o) {
  return o == Optimizer::kAdam;
}
inline bool reads_v(Optimizer o) {
  return o != Optimizer::kSgd;
}

// The output bias of neuron j: read by the forward pass, updated by the backward pass.
inline void prefetch_bias(const ParamVector& b, std::uint32_t j, bool update, Optimizer o) {
  __builtin_prefetch(b.w.data() + j);
  if (update && !b.v.empty()) {
    if (reads_m(o)) __builtin_prefetch(b.m.data() + j);
    if (reads_v(o)) __builtin_prefetch(b.v.data() + j);
  }
}

// An fp32 row and, with `update`, the optimizer state its update reads.
inline void prefetch_f32_row(const ParamMatrix& W, std::uint32_t j, bool update, Optimizer o) {
  const std::size_t off = std::size_t{j} * W.stride, bytes = W.cols * sizeof(float);
  prefetch_bytes(W.w.data() + off, bytes);
  if (update && !W.v.empty()) {
    if (reads_m(o)) prefetch_bytes(W.m.data() + off, bytes);
    if (reads_v(o)) prefetch_bytes(W.v.data() + off, bytes);
  }
}

// One step of the optimizer on fp32 row j (the fp32 and bf16-act modes keep fp32 rows).
void update_f32_row(const Kernels& k, Optimizer o, ParamMatrix& W, std::uint32_t j, const float* gw,
                    const AdamStep& step) {
  const std::size_t off = std::size_t{j} * W.stride;
  float* m = W.m.empty() ? nullptr : W.m.data() + off;  // SGD needs no state
  float* v = W.v.empty() ? nullptr : W.v.data() + off;
  optimizer_step(k, o, W.row(j), m, v, gw, W.cols, step);
}

class Fp32Ops final : public OutputLayerOps {
 public:
  Fp32Ops(ParamMatrix& W, const ParamVector& bias, const TrainConfig& c)
      : W_(W), bias_(bias), k_(kernels()), bk_(bf16_kernels()), opt_(c.output_optimizer) {}
  void prepare(const float* H, std::size_t stride, std::size_t B) override {
    H_ = H;
    stride_ = stride;
    shared_.prepare(H, stride, B, W_.cols);
  }
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    if (!shared_.defer_forward(j, rows, count, z))
      k_.dot_rows(W_.row(j), H_, stride_, rows, count, W_.cols, z);
  }
  void finish_forward() override {
    shared_.finish_forward(
        [&](std::uint32_t j, float* out) { std::memcpy(out, W_.row(j), W_.cols * sizeof(float)); });
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t t, const AdamStep& step) override {
    if (shared_.defer_backward(j, rows, count, coef, t, step)) return;
    k_.backward_rows(W_.row(j), H_, dH, stride_, rows, coef, count, W_.cols, gw);
    update_f32_row(k_, opt_, W_, j, gw, step);
  }
  void finish_backward(float* dH) override {
    shared_.finish_backward(
        dH, [&](std::uint32_t j, const float* gw, std::uint64_t, const AdamStep& step) {
          update_f32_row(k_, opt_, W_, j, gw, step);
        });
  }
  void prefetch(std::uint32_t j, bool update) const override {
    prefetch_f32_row(W_, j, update, opt_);
    prefetch_bias(bias_, j, update, opt_);
  }

 private:
  ParamMatrix& W_;
  const ParamVector& bias_;
  const Kernels& k_;
  const Bf16Kernels& bk_;
  const Optimizer opt_;  // TrainConfig::output_optimizer
  const float* H_ = nullptr;
  std::size_t stride_ = 0;
  mutable SharedRows shared_;  // forward() notes shared neurons from many threads (per thread)
};

// Rounds the batch's activations to bf16 once; shared by the bf16 modes.
class Bf16ActBase : public OutputLayerOps {
 public:
  Bf16ActBase(const ParamVector& bias, const TrainConfig& c)
      : bias_(bias), k_(kernels()), bk_(bf16_kernels()), opt_(c.output_optimizer) {}
  void prepare(const float* H, std::size_t stride, std::size_t B) override {
    dim_ = stride;  // converting the padding (zeros) too keeps bf16 rows fully defined
    hstride_ = stride;
    bstride_ = padded_bf16(stride);
    if (Hb_.size() < B * bstride_) Hb_ = AlignedArray<bf16>(B * bstride_);
    if (Hr_.size() < B * stride) Hr_ = AlignedArray<float>(B * stride);
    for (std::size_t s = 0; s < B; ++s) {
      bk_.to_bf16(H + s * stride, Hb_.data() + s * bstride_, dim_);
      bk_.to_f32(Hb_.data() + s * bstride_, Hr_.data() + s * stride, dim_);
    }
    shared_.prepare(Hr_.data(), stride, B, cols_);
  }

 protected:
  const ParamVector& bias_;
  const Kernels& k_;
  const Bf16Kernels& bk_;
  const Optimizer opt_;  // TrainConfig::output_optimizer
  AlignedArray<bf16> Hb_;
  AlignedArray<float> Hr_;  // Hb_ expanded: the deferred neurons' gradients read it
  std::size_t dim_ = 0, hstride_ = 0, bstride_ = 0;
  std::size_t cols_ = 0;       // the output layer's width
  mutable SharedRows shared_;  // forward() notes shared neurons from many threads (per thread)
};

class Bf16ActOps final : public Bf16ActBase {
 public:
  Bf16ActOps(ParamMatrix& W, const ParamVector& bias, const TrainConfig& c)
      : Bf16ActBase(bias, c), W_(W) {
    cols_ = W_.cols;
  }
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    if (!shared_.defer_forward(j, rows, count, z))
      bk_.dot_rows_fb(W_.row(j), Hb_.data(), bstride_, rows, count, W_.cols, z);
  }
  void finish_forward() override {
    shared_.finish_forward(
        [&](std::uint32_t j, float* out) { std::memcpy(out, W_.row(j), W_.cols * sizeof(float)); });
  }
  void finish_backward(float* dH) override {
    shared_.finish_backward(
        dH, [&](std::uint32_t j, const float* gw, std::uint64_t, const AdamStep& step) {
          update_f32_row(k_, opt_, W_, j, gw, step);
        });
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t t, const AdamStep& step) override {
    if (shared_.defer_backward(j, rows, count, coef, t, step)) return;
    bk_.backward_rows_fb(W_.row(j), Hb_.data(), bstride_, dH, hstride_, rows, coef, count, W_.cols,
                         gw);
    update_f32_row(k_, opt_, W_, j, gw, step);
  }
  void prefetch(std::uint32_t j, bool update) const override {
    prefetch_f32_row(W_, j, update, opt_);
    prefetch_bias(bias_, j, update, opt_);
  }

 private:
  ParamMatrix& W_;
};

class Bf16Ops final : public Bf16ActBase {
 public:
  Bf16Ops(Bf16Rows& R, const ParamVector& bias, const TrainConfig& c)
      : Bf16ActBase(bias, c), R_(R) {
    cols_ = R_.cols;
  }
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    if (!shared_.defer_forward(j, rows, count, z))
      bk_.dot_rows_bb(R_.row(j), Hb_.data(), bstride_, rows, count, R_.cols, z);
  }
  void finish_forward() override {
    shared_.finish_forward(
        [&](std::uint32_t j, float* out) { bk_.to_f32(R_.row(j), out, R_.cols); });
  }
  void finish_backward(float* dH) override {
    shared_.finish_backward(dH, [&](std::uint32_t j, const float* gw, std::uint64_t t,
                                    const AdamStep& step) { update(j, gw, t, step); });
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t t, const AdamStep& step) override {
    if (shared_.defer_backward(j, rows, count, coef, t, step)) return;
    bk_.backward_rows_bb(R_.row(j), Hb_.data(), bstride_, dH, hstride_, rows, coef, count, R_.cols,
                         gw);
    update(j, gw, t, step);
  }
  // The optimizer step of row j; the rounding noise is seeded from (row, step).
  void update(std::uint32_t j, const float* gw, std::uint64_t t, const AdamStep& step) {
    bf16* w = R_.row(j);
    const std::uint32_t seed = sr_seed(j, t);
    if (opt_ == Optimizer::kSgd)
      sgd_bf16(w, gw, R_.cols, step.lr, seed);
    else if (opt_ == Optimizer::kAdagrad)
      adagrad_bf16(w, R_.m.empty() ? nullptr : R_.v.data() + j * R_.stride,
                   R_.m.empty() ? R_.vf.data() + j * R_.f32_stride() : nullptr, gw, R_.cols, step,
                   seed);
    else if (!R_.m.empty())
      bk_.adam_bf16(w, R_.m.data() + j * R_.stride, R_.v.data() + j * R_.stride, gw, R_.cols, step,
                    seed);
    else
      bk_.adam_bf16_w(w, R_.mf.data() + j * R_.f32_stride(), R_.vf.data() + j * R_.f32_stride(), gw,
                      R_.cols, step, seed);
  }
  void prefetch(std::uint32_t j, bool update) const override {
    const std::size_t off = std::size_t{j} * R_.stride, bytes = R_.cols * sizeof(bf16);
    prefetch_bytes(R_.w.data() + off, bytes);
    if (update && !R_.m.empty()) {
      if (reads_m(opt_)) prefetch_bytes(R_.m.data() + off, bytes);
      if (reads_v(opt_)) prefetch_bytes(R_.v.data() + off, bytes);
    } else if (update) {
      const std::size_t foff = std::size_t{j} * R_.f32_stride();
      if (reads_m(opt_)) prefetch_bytes(R_.mf.data() + foff, R_.cols * sizeof(float));
      if (reads_v(opt_)) prefetch_bytes(R_.vf.data() + foff, R_.cols * sizeof(float));
    }
    prefetch_bias(bias_, j, update, opt_);
  }

 private:
  Bf16Rows& R_;
};

}  // namespace

OutputStorage training_storage(const TrainConfig& config) {
  if (config.precision == TrainPrecision::kBF16) return {.precision = Precision::kBF16};
  if (config.precision == TrainPrecision::kBF16W)
    return {.precision = Precision::kBF16, .f32_moments = true};
  return {.precision = Precision::kF32};  // fp32 and bf16-act
}

std::unique_ptr<OutputLayerOps> make_f32_ops(ParamMatrix& W, const ParamVector& bias,
                                             const TrainConfig& config) {
  if (config.precision == TrainPrecision::kBF16Act)
    return std::make_unique<Bf16ActOps>(W, bias, config);
  return std::make_unique<Fp32Ops>(W, bias, config);
}

std::unique_ptr<OutputLayerOps> make_bf16_ops(Bf16Rows& R, const ParamVector& bias,
                                              const TrainConfig& config) {
  return std::make_unique<Bf16Ops>(R, bias, config);
}

std::unique_ptr<OutputLayerOps> make_output_ops(Network& net, const TrainConfig& config) {
  if (!net.output->trainable())
    fail(std::string("the output layer is ") + precision_name(net.output->precision()) +
         "-quantized: it cannot be trained");
  const OutputStorage storage = training_storage(config);
  // Another storage, or bf16 rows with the other kind of moments (or none): through fp32, which
  // holds bf16 values and moments exactly.
  if (!net.output->holds(storage))
    net.output = make_output_matrix(net.output->release_as_f32(), storage);
  return net.output->training_ops(net.output_bias, config);
}

}  // namespace glide::engine
