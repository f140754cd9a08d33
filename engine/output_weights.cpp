#include "engine/output_weights.h"

#include <tbb/parallel_for.h>

#include <numeric>

#include "common/error.h"
#include "engine/kernels.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "quant/int8_kernels.h"

namespace glide::engine {

const char* precision_name(Precision p) {
  return p == Precision::kInt8 ? "int8" : p == Precision::kBF16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::kF32;
  if (s == "int8") return Precision::kInt8;
  if (s == "bf16") return Precision::kBF16;
  fail("precision must be fp32, bf16 or int8, got '" + s + "'");
}

namespace {

// Scores rows j0..j0+n one at a time against every sample of the batch: `dots(j, all, col)`
// fills col[s] with row j's dot product with sample s's activations (all = 0..B-1).
template <class RowDots>
void score_block_by_rows(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n,
                         const ParamVector& bias, float* out, std::size_t ld, RowDots dots) {
  thread_local std::vector<std::uint32_t> all;
  thread_local std::vector<float> col;
  if (all.size() < batch.B) {
    all.resize(batch.B);
    std::iota(all.begin(), all.end(), 0u);
  }
  col.resize(batch.B);
  for (std::uint32_t q = 0; q < n; ++q) {
    dots(j0 + q, all.data(), col.data());
    const float b = bias.w[j0 + q];
    for (std::size_t s = 0; s < batch.B; ++s) out[s * ld + q] = col[s] + b;
  }
}

// Scorers that read fp32 activations as they are.
void prepare_plain(const float* H, std::size_t stride, std::size_t B, ScorerBatch& batch) {
  batch.H = H;
  batch.stride = stride;
  batch.B = B;
}

class Fp32Scorer final : public RowScorer {
 public:
  Fp32Scorer(const ParamMatrix& W, const ParamVector& b) : W_(W), b_(b) {}
  Precision precision() const override { return Precision::kF32; }
  std::uint32_t rows() const override { return W_.rows; }
  std::size_t weight_bytes() const override { return std::size_t{W_.rows} * W_.cols * 4; }
  void prepare(const float* H, std::size_t stride, std::size_t B,
               ScorerBatch& batch) const override {
    prepare_plain(H, stride, B, batch);
  }
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override {
    const Kernels& k = kernels();
    score_block_by_rows(batch, j0, n, b_, out, ld,
                        [&](std::uint32_t j, const std::uint32_t* all, float* col) {
                          k.dot_rows(W_.row(j), batch.H, batch.stride, all, batch.B, W_.cols, col);
                        });
  }
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override {
    const Kernels& k = kernels();
    const float* h = batch.H + s * batch.stride;
    for (std::size_t q = 0; q < n; ++q) out[q] = k.dot(W_.row(rows[q]), h, W_.cols) + b_.w[rows[q]];
  }

 private:
  const ParamMatrix& W_;
  const ParamVector& b_;
};

class Int8Scorer final : public RowScorer {
 public:
  Int8Scorer(const QuantizedRows& W, const ParamVector& b) : W_(W), b_(b) {}
  Precision precision() const override { return Precision::kInt8; }
  std::uint32_t rows() const override { return W_.rows; }
  std::size_t weight_bytes() const override {
    return std::size_t{W_.rows} * (W_.stride + sizeof(float));
  }
  void prepare(const float* H, std::size_t stride, std::size_t B,
               ScorerBatch& batch) const override {
    batch.H = H;
    batch.stride = stride;
    batch.B = B;
    batch.q_stride = W_.stride;
    if (batch.q.size() < B * W_.stride) batch.q = AlignedArray<std::uint8_t>(B * W_.stride);
    batch.q_scale.resize(B);
    for (std::size_t s = 0; s < B; ++s)
      batch.q_scale[s] =
          quant::quantize_u8(H + s * stride, W_.cols, batch.q.data() + s * W_.stride);
  }
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override {
    quant::int8_kernels().gemm_u8s8_f32(W_.row(j0), W_.stride, W_.scale.data() + j0,
                                        b_.w.data() + j0, n, batch.q.data(), batch.q_stride,
                                        batch.q_scale.data(), batch.B, W_.cols, out, ld);
  }
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override {
    const quant::Int8Kernels& k = quant::int8_kernels();
    const std::uint8_t* a = batch.q.data() + s * batch.q_stride;
    const float xs = batch.q_scale[s];
    for (std::size_t q = 0; q < n; ++q) {
      const std::uint32_t j = rows[q];
      const float scale = W_.scale[j] * xs;
      out[q] = static_cast<float>(k.dot_u8s8(a, W_.row(j), W_.cols)) * scale + b_.w[j];
    }
  }

 private:
  const QuantizedRows& W_;
  const ParamVector& b_;
};

// bf16 rows against fp32 activations: each weight is expanded exactly, products summed in fp32.
class Bf16Scorer final : public RowScorer {
 public:
  Bf16Scorer(const Bf16Rows& W, const ParamVector& b) : W_(W), b_(b) {}
  Precision precision() const override { return Precision::kBF16; }
  std::uint32_t rows() const override { return W_.rows; }
  std::size_t weight_bytes() const override { return std::size_t{W_.rows} * W_.cols * 2; }
  void prepare(const float* H, std::size_t stride, std::size_t B,
               ScorerBatch& batch) const override {
    prepare_plain(H, stride, B, batch);
  }
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override {
    const Bf16Kernels& k = bf16_kernels();
    score_block_by_rows(
        batch, j0, n, b_, out, ld, [&](std::uint32_t j, const std::uint32_t* all, float* col) {
          k.dot_rows_bf(W_.row(j), batch.H, batch.stride, all, batch.B, W_.cols, col);
        });
  }
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override {
    const Bf16Kernels& k = bf16_kernels();
    const float* h = batch.H + s * batch.stride;
    for (std::size_t q = 0; q < n; ++q)
      out[q] = k.dot_f32(W_.row(rows[q]), h, W_.cols) + b_.w[rows[q]];
  }

 private:
  const Bf16Rows& W_;
  const ParamVector& b_;
};

}  // namespace

std::unique_ptr<RowScorer> make_output_scorer(const Network& net) {
  if (net.output_int8) return std::make_unique<Int8Scorer>(*net.output_int8, net.output_bias);
  if (net.output_bf16.rows) return std::make_unique<Bf16Scorer>(net.output_bf16, net.output_bias);
  return std::make_unique<Fp32Scorer>(net.output, net.output_bias);
}

void quantize_output(Network& net, quant::Granularity g) {
  if (net.output_int8) fail("the output layer is already quantized");
  if (net.output_bf16.rows) output_to_f32(net);  // bf16 values are exact in fp32
  const ParamMatrix& W = net.output;
  auto Q = std::make_shared<QuantizedRows>(W.rows, W.cols, g);
  if (g == quant::Granularity::kTensor) {
    quant::quantize_rows_s8(W.w.data(), W.rows, W.cols, W.stride, g, Q->q.data(), Q->stride,
                            Q->scale.data());
  } else {  // rows are independent: quantize in parallel
    tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 4096), [&](const auto& r) {
      quant::quantize_rows_s8(W.row(r.begin()), r.size(), W.cols, W.stride, g,
                              Q->q.data() + std::size_t{r.begin()} * Q->stride, Q->stride,
                              Q->scale.data() + r.begin());
    });
  }
  net.output = ParamMatrix();
  net.output_int8 = std::move(Q);
}

void output_to_bf16(Network& net, bool optimizer, bool f32_moments) {
  if (net.output_int8) fail("the output layer is int8-quantized; it cannot be converted to bf16");
  if (net.output_bf16.rows) fail("the output layer is already bf16");
  const ParamMatrix& W = net.output;
  Bf16Rows R(W.rows, W.cols);
  if (optimizer && f32_moments) {
    R.mf = W.m;  // same padded stride
    R.vf = W.v;
  } else if (optimizer) {
    R.m = AlignedArray<bf16>(R.w.size());
    R.v = AlignedArray<bf16>(R.w.size());
  }
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 4096), [&](const auto& r) {
    const Bf16Kernels& k = bf16_kernels();
    for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
      const std::size_t src = j * W.stride, dst = j * R.stride;
      k.to_bf16(W.w.data() + src, R.w.data() + dst, W.cols);
      if (!R.m.empty()) {
        k.to_bf16(W.m.data() + src, R.m.data() + dst, W.cols);
        k.to_bf16(W.v.data() + src, R.v.data() + dst, W.cols);
      }
    }
  });
  net.output = ParamMatrix();
  net.output_bf16 = std::move(R);
}

void output_to_f32(Network& net) {
  if (!net.output_bf16.rows) return;
  const Bf16Rows& R = net.output_bf16;
  ParamMatrix W(R.rows, R.cols);
  if (!R.mf.empty()) {
    W.m = R.mf;
    W.v = R.vf;
  }
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 4096), [&](const auto& r) {
    const Bf16Kernels& k = bf16_kernels();
    for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
      const std::size_t src = j * R.stride, dst = j * W.stride;
      k.to_f32(R.w.data() + src, W.w.data() + dst, W.cols);
      if (!R.m.empty()) {
        k.to_f32(R.m.data() + src, W.m.data() + dst, W.cols);
        k.to_f32(R.v.data() + src, W.v.data() + dst, W.cols);
      }
    }
  });
  net.output_bf16 = Bf16Rows();
  net.output = std::move(W);
}

ParamMatrix output_as_f32(const Network& net) {
  if (net.output_bf16.rows) {
    const Bf16Rows& R = net.output_bf16;
    ParamMatrix m;  // weights only: no Adam moments
    m.rows = R.rows;
    m.cols = R.cols;
    m.stride = padded(R.cols);
    m.w = AlignedArray<float>(std::size_t{m.rows} * m.stride);
    tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, R.rows, 4096), [&](const auto& r) {
      const Bf16Kernels& k = bf16_kernels();
      for (std::uint32_t j = r.begin(); j < r.end(); ++j)
        k.to_f32(R.row(j), m.w.data() + j * m.stride, R.cols);
    });
    return m;
  }
  if (!net.output_int8) return net.output;
  const QuantizedRows& Q = *net.output_int8;
  ParamMatrix m;  // weights only: no Adam moments
  m.rows = Q.rows;
  m.cols = Q.cols;
  m.stride = padded(Q.cols);
  m.w = AlignedArray<float>(std::size_t{m.rows} * m.stride);
  quant::dequantize_rows_s8(Q.q.data(), Q.stride, Q.scale.data(), Q.rows, Q.cols, m.w.data(),
                            m.stride);
  return m;
}

std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const Config& config,
                                                          const Network& net) {
  if (!net.output_int8 && !net.output_bf16.rows)
    return make_inference_lsh_sampler(config.net, config.train, net.output,
                                      net.output_bias.w.span());
  const ParamMatrix deq = output_as_f32(net);  // the tables keep no pointer into it
  return make_inference_lsh_sampler(config.net, config.train, deq, net.output_bias.w.span());
}

void require_trainable(const Network& net, const std::string& where) {
  if (net.output_int8)
    fail(where, std::string("is an int8-quantized inference model (precision ") +
                    precision_name(Precision::kInt8) +
                    "); it cannot be trained or resumed: train the fp32 model and quantize it "
                    "again");
}

}  // namespace glide::engine
