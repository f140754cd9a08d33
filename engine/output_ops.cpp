#include "engine/output_ops.h"

#include "common/error.h"
#include "engine/kernels_bf16.h"

namespace glide::engine {

namespace {

// SGD on a bf16 row: w -= lr g, stochastically rounded.
void sgd_bf16(bf16* w, const float* g, std::size_t n, float lr, std::uint32_t seed) {
  for (std::size_t i = 0; i < n; ++i)
    w[i] = f32_to_bf16_sr(bf16_to_f32(w[i]) - lr * g[i],
                          sr_noise(seed, static_cast<std::uint32_t>(i)));
}

// One step of the optimizer on fp32 row j (the fp32 and bf16-act modes keep fp32 rows).
void update_f32_row(const Kernels& k, bool sgd, ParamMatrix& W, std::uint32_t j, const float* gw,
                    const AdamStep& step) {
  float* w = W.row(j);
  if (sgd)
    k.axpy(-step.lr, gw, w, W.cols);
  else
    k.adam(w, W.m.data() + j * W.stride, W.v.data() + j * W.stride, gw, W.cols, step);
}

class Fp32Ops final : public OutputLayerOps {
 public:
  Fp32Ops(Network& net, const TrainConfig& c)
      : W_(net.output), k_(kernels()), sgd_(c.optimizer == "sgd") {}
  void prepare(const float* H, std::size_t stride, std::size_t) override {
    H_ = H;
    stride_ = stride;
  }
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    k_.dot_rows(W_.row(j), H_, stride_, rows, count, W_.cols, z);
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t, const AdamStep& step) override {
    k_.backward_rows(W_.row(j), H_, dH, stride_, rows, coef, count, W_.cols, gw);
    update_f32_row(k_, sgd_, W_, j, gw, step);
  }
  OutputRowsView view() const override { return OutputRowsView::of(W_); }

 private:
  ParamMatrix& W_;
  const Kernels& k_;
  const bool sgd_;
  const float* H_ = nullptr;
  std::size_t stride_ = 0;
};

// Rounds the batch's activations to bf16 once; shared by the bf16 modes.
class Bf16ActBase : public OutputLayerOps {
 public:
  explicit Bf16ActBase(const TrainConfig& c)
      : k_(kernels()), bk_(bf16_kernels()), sgd_(c.optimizer == "sgd") {}
  void prepare(const float* H, std::size_t stride, std::size_t B) override {
    dim_ = stride;  // converting the padding (zeros) too keeps bf16 rows fully defined
    hstride_ = stride;
    bstride_ = padded_bf16(stride);
    if (Hb_.size() < B * bstride_) Hb_ = AlignedArray<bf16>(B * bstride_);
    for (std::size_t s = 0; s < B; ++s)
      bk_.to_bf16(H + s * stride, Hb_.data() + s * bstride_, dim_);
  }

 protected:
  const Kernels& k_;
  const Bf16Kernels& bk_;
  const bool sgd_;
  AlignedArray<bf16> Hb_;
  std::size_t dim_ = 0, hstride_ = 0, bstride_ = 0;
};

class Bf16ActOps final : public Bf16ActBase {
 public:
  Bf16ActOps(Network& net, const TrainConfig& c) : Bf16ActBase(c), W_(net.output) {}
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    bk_.dot_rows_fb(W_.row(j), Hb_.data(), bstride_, rows, count, W_.cols, z);
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t, const AdamStep& step) override {
    bk_.backward_rows_fb(W_.row(j), Hb_.data(), bstride_, dH, hstride_, rows, coef, count, W_.cols,
                         gw);
    update_f32_row(k_, sgd_, W_, j, gw, step);
  }
  OutputRowsView view() const override { return OutputRowsView::of(W_); }

 private:
  ParamMatrix& W_;
};

class Bf16Ops final : public Bf16ActBase {
 public:
  Bf16Ops(Network& net, const TrainConfig& c) : Bf16ActBase(c), R_(net.output_bf16) {}
  void forward(std::uint32_t j, const std::uint32_t* rows, std::size_t count,
               float* z) const override {
    bk_.dot_rows_bb(R_.row(j), Hb_.data(), bstride_, rows, count, R_.cols, z);
  }
  void backward(std::uint32_t j, const std::uint32_t* rows, const float* coef, std::size_t count,
                float* dH, float* gw, std::uint64_t t, const AdamStep& step) override {
    bf16* w = R_.row(j);
    bk_.backward_rows_bb(w, Hb_.data(), bstride_, dH, hstride_, rows, coef, count, R_.cols, gw);
    const std::uint32_t seeds[3] = {sr_seed(j, t, 0), sr_seed(j, t, 1), sr_seed(j, t, 2)};
    if (sgd_)
      sgd_bf16(w, gw, R_.cols, step.lr, seeds[0]);
    else if (!R_.m.empty())
      bk_.adam_bf16(w, R_.m.data() + j * R_.stride, R_.v.data() + j * R_.stride, gw, R_.cols, step,
                    seeds);
    else
      bk_.adam_bf16_w(w, R_.mf.data() + j * R_.f32_stride(), R_.vf.data() + j * R_.f32_stride(), gw,
                      R_.cols, step, seeds);
  }
  OutputRowsView view() const override {
    return {R_.rows, R_.cols, nullptr, R_.w.data(), R_.stride};
  }

 private:
  Bf16Rows& R_;
};

}  // namespace

std::unique_ptr<OutputLayerOps> make_output_ops(Network& net, const TrainConfig& config) {
  if (net.output_int8) fail("the output layer is int8-quantized: it cannot be trained");
  const bool bf16_weights = config.precision == "bf16" || config.precision == "bf16-w";
  if (bf16_weights) {
    const bool f32_moments = config.precision == "bf16-w";
    if (net.output_bf16.rows && net.output_bf16.mf.empty() != !f32_moments)
      output_to_f32(net);  // the other bf16 mode: convert the moments through fp32
    if (!net.output_bf16.rows) output_to_bf16(net, /*optimizer=*/true, f32_moments);
    if (!net.output_bf16.has_optimizer_state()) {  // an inference model: fresh moments
      Bf16Rows& R = net.output_bf16;
      if (f32_moments) {
        R.mf = AlignedArray<float>(std::size_t{R.rows} * R.f32_stride());
        R.vf = AlignedArray<float>(std::size_t{R.rows} * R.f32_stride());
      } else {
        R.m = AlignedArray<bf16>(R.w.size());
        R.v = AlignedArray<bf16>(R.w.size());
      }
    }
    return std::make_unique<Bf16Ops>(net, config);
  }
  output_to_f32(net);  // no-op on an fp32 network
  if (net.output.m.empty()) {
    net.output.m = AlignedArray<float>(net.output.w.size());
    net.output.v = AlignedArray<float>(net.output.w.size());
  }
  if (config.precision == "bf16-act") return std::make_unique<Bf16ActOps>(net, config);
  return std::make_unique<Fp32Ops>(net, config);
}

}  // namespace glide::engine
