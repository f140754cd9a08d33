// int8 output rows, inference only (docs/model-format.md: after output.bias, output.weight i8
// [rows, stride] and output.weight_scale f32 [rows]; the 'state' section names the granularity).
#include <tbb/parallel_for.h>

#include "common/error.h"
#include "engine/model_file.h"
#include "engine/output_weights.h"
#include "quant/int8_kernels.h"

namespace glide::engine {

std::unique_ptr<OutputMatrix> Int8OutputMatrix::from_f32(ParamMatrix W, const OutputStorage& s) {
  const quant::Granularity g = s.granularity;
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
  return std::make_unique<Int8OutputMatrix>(std::move(Q));
}

std::unique_ptr<OutputMatrix> Int8OutputMatrix::empty(std::uint32_t rows, std::uint32_t cols) {
  auto Q = std::make_shared<QuantizedRows>();
  Q->rows = rows;
  Q->cols = cols;
  Q->stride = QuantizedRows::stride_for(cols);
  return std::make_unique<Int8OutputMatrix>(std::move(Q));
}

std::unique_ptr<OutputMatrix> Int8OutputMatrix::clone() const {
  return std::make_unique<Int8OutputMatrix>(Q_);
}

void Int8OutputMatrix::prepare(const float* H, std::size_t stride, std::size_t B, const float* bias,
                               ScorerBatch& batch) const {
  const QuantizedRows& W = *Q_;
  OutputMatrix::prepare(H, stride, B, bias, batch);
  batch.q_stride = W.stride;
  if (batch.q.size() < B * W.stride) batch.q = AlignedArray<std::uint8_t>(B * W.stride);
  batch.q_scale.resize(B);
  for (std::size_t s = 0; s < B; ++s)
    batch.q_scale[s] = quant::quantize_u8(H + s * stride, W.cols, batch.q.data() + s * W.stride);
}

void Int8OutputMatrix::score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n,
                                   float* out, std::size_t ld) const {
  const QuantizedRows& W = *Q_;
  quant::int8_kernels().gemm_u8s8_f32(W.row(j0), W.stride, W.scale.data() + j0, batch.bias + j0, n,
                                      batch.q.data(), batch.q_stride, batch.q_scale.data(), batch.B,
                                      W.cols, out, ld);
}

void Int8OutputMatrix::score_rows(const ScorerBatch& batch, std::size_t s,
                                  const std::uint32_t* rows, std::size_t n, float* out) const {
  const QuantizedRows& W = *Q_;
  const quant::Int8Kernels& k = quant::int8_kernels();
  const std::uint8_t* a = batch.q.data() + s * batch.q_stride;
  const float xs = batch.q_scale[s];
  for (std::size_t q = 0; q < n; ++q) {
    const std::uint32_t j = rows[q];
    const float scale = W.scale[j] * xs;
    out[q] = static_cast<float>(k.dot_u8s8(a, W.row(j), W.cols)) * scale + batch.bias[j];
  }
}

const float* Int8OutputMatrix::row_f32(std::uint32_t j, float* buf) const {
  const QuantizedRows& W = *Q_;
  quant::dequantize_rows_s8(W.row(j), W.stride, W.scale.data() + j, 1, W.cols, buf, W.cols);
  return buf;
}

ParamMatrix Int8OutputMatrix::release_as_f32() {
  ParamMatrix m = to_f32();
  Q_ = std::make_shared<QuantizedRows>();
  return m;
}

std::unique_ptr<OutputLayerOps> Int8OutputMatrix::training_ops(const ParamVector&,
                                                               const TrainConfig&) {
  fail("the output layer is int8-quantized: it cannot be trained");
}

void Int8OutputMatrix::save(ModelFileWriter& w, bool,
                            const std::function<void()>& save_bias) const {
  save_bias();
  const QuantizedRows& q = *Q_;
  w.add("output.weight", DType::kI8, {q.rows, q.stride}, std::as_bytes(q.q.span()));
  w.add("output.weight_scale", DType::kF32, {q.rows}, std::as_bytes(q.scale.span()));
}

StateFields Int8OutputMatrix::state_fields() const {
  return {{"granularity", quant::granularity_name(Q_->granularity)}};
}

void Int8OutputMatrix::load(const ModelFileReader& r, const StateFields& state, bool) {
  quant::Granularity g = quant::Granularity::kRow;
  try {
    const auto it = state.find("granularity");
    g = quant::parse_granularity(it == state.end() ? std::string("row") : it->second);
  } catch (const Error& e) {
    fail(r.path(), std::string("section 'state': ") + e.what());
  }
  auto q = std::make_shared<QuantizedRows>(Q_->rows, Q_->cols, g);
  const std::vector<std::uint64_t> wshape{q->rows, q->stride}, sshape{q->rows};
  r.read_into("output.weight", DType::kI8, wshape, std::as_writable_bytes(q->q.span()));
  r.read_into("output.weight_scale", DType::kF32, sshape, std::as_writable_bytes(q->scale.span()));
  Q_ = std::move(q);
}

}  // namespace glide::engine
