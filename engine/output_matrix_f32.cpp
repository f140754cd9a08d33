// fp32 output rows: the trainable storage (docs/model-format.md: output.weight f32 [rows,
// stride], output.adam_m / adam_v alike, then output.bias).
#include "common/error.h"
#include "engine/kernels.h"
#include "engine/model_file.h"
#include "engine/output_ops.h"
#include "engine/output_weights.h"

namespace glide::engine {

std::unique_ptr<OutputMatrix> F32OutputMatrix::from_f32(ParamMatrix w, const OutputStorage&) {
  return std::make_unique<F32OutputMatrix>(std::move(w));
}

std::unique_ptr<OutputMatrix> F32OutputMatrix::empty(std::uint32_t rows, std::uint32_t cols) {
  ParamMatrix w;
  w.rows = rows;
  w.cols = cols;
  w.stride = padded(cols);
  return std::make_unique<F32OutputMatrix>(std::move(w));
}

std::unique_ptr<OutputMatrix> F32OutputMatrix::clone() const {
  return std::make_unique<F32OutputMatrix>(W_);
}

void F32OutputMatrix::score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n,
                                  float* out, std::size_t ld) const {
  if (score_block_as_product(*this, batch, j0, n, out, ld)) return;
  const Kernels& k = kernels();
  score_block_by_rows(batch, j0, n, out, ld,
                      [&](std::uint32_t j, const std::uint32_t* all, float* col) {
                        k.dot_rows(W_.row(j), batch.H, batch.stride, all, batch.B, W_.cols, col);
                      });
}

void F32OutputMatrix::score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows,
                                 std::size_t n, float* out) const {
  const Kernels& k = kernels();
  const float* h = batch.H + s * batch.stride;
  for (std::size_t q = 0; q < n; ++q)
    out[q] = k.dot(W_.row(rows[q]), h, W_.cols) + batch.bias[rows[q]];
}

ParamMatrix F32OutputMatrix::release_as_f32() {
  ParamMatrix w = std::move(W_);
  W_ = ParamMatrix();
  return w;
}

std::unique_ptr<OutputLayerOps> F32OutputMatrix::training_ops(const ParamVector& bias,
                                                              const TrainConfig& config) {
  W_.ensure_moments();
  return make_f32_ops(W_, bias, config);
}

void F32OutputMatrix::save(ModelFileWriter& w, bool optimizer,
                           const std::function<void()>& save_bias) const {
  const std::vector<std::uint64_t> shape{W_.rows, W_.stride};
  w.add("output.weight", DType::kF32, shape, std::as_bytes(W_.w.span()));
  if (optimizer) {
    w.add("output.adam_m", DType::kF32, shape, std::as_bytes(W_.m.span()));
    w.add("output.adam_v", DType::kF32, shape, std::as_bytes(W_.v.span()));
  }
  save_bias();
}

void F32OutputMatrix::load(const ModelFileReader& r, const StateFields&, bool optimizer) {
  W_ = ParamMatrix(W_.rows, W_.cols, optimizer);
  const std::vector<std::uint64_t> shape{W_.rows, W_.stride};
  r.read_into("output.weight", DType::kF32, shape, std::as_writable_bytes(W_.w.span()));
  if (optimizer) {
    r.read_into("output.adam_m", DType::kF32, shape, std::as_writable_bytes(W_.m.span()));
    r.read_into("output.adam_v", DType::kF32, shape, std::as_writable_bytes(W_.v.span()));
  }
}

}  // namespace glide::engine
