// The storages of the output layer's rows, one OutputMatrix (engine/output_matrix.h) each. Most
// code holds them as an OutputMatrix; the concrete classes are for the conversions and for tests
// that check what a storage keeps.
#pragma once
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "engine/kernels_bf16.h"
#include "engine/output_matrix.h"
#include "engine/params.h"
#include "quant/quantize.h"

namespace glide::engine {

// Output weights quantized to symmetric s8: row j is q[j * stride + 0..cols) (padding 0) and
// stands for q * scale[j].
struct QuantizedRows {
  std::uint32_t rows = 0, cols = 0;
  std::size_t stride = 0;  // bytes per row: cols rounded up to 64
  quant::Granularity granularity = quant::Granularity::kRow;
  AlignedArray<std::int8_t> q;
  AlignedArray<float> scale;
  static std::size_t stride_for(std::size_t cols) { return (cols + 63) / 64 * 64; }
  QuantizedRows() = default;
  QuantizedRows(std::uint32_t r, std::uint32_t c, quant::Granularity g)
      : rows(r), cols(c), stride(stride_for(c)), granularity(g), q(r * stride), scale(r) {}
  const std::int8_t* row(std::size_t j) const { return q.data() + j * stride; }
  std::size_t bytes() const { return q.size() + scale.size() * sizeof(float); }
};

// Output weights in bf16: row j is w[j * stride + 0..cols) (padding 0). Adam moments in bf16
// (m, v) or fp32 (mf, vf, --precision bf16-w), or none for an inference model.
struct Bf16Rows {
  std::uint32_t rows = 0, cols = 0;
  std::size_t stride = 0;  // elements per row: cols rounded up to 32 (64 bytes)
  AlignedArray<bf16> w, m, v;
  AlignedArray<float> mf, vf;  // stride padded(cols)
  Bf16Rows() = default;
  Bf16Rows(std::uint32_t r, std::uint32_t c)
      : rows(r), cols(c), stride(padded_bf16(c)), w(r * stride) {}
  bf16* row(std::size_t j) { return w.data() + j * stride; }
  const bf16* row(std::size_t j) const { return w.data() + j * stride; }
  std::size_t f32_stride() const { return padded(cols); }
  bool has_optimizer_state() const { return !m.empty() || !mf.empty(); }
  std::size_t bytes() const { return w.size() * sizeof(bf16); }
};

// Scores rows j0..j0+n one at a time against every sample of the batch: `dots(j, all, col)`
// fills col[s] with row j's dot product with sample s's activations (all = 0..B-1).
template <class RowDots>
void score_block_by_rows(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                         std::size_t ld, RowDots dots) {
  thread_local std::vector<std::uint32_t> all;
  thread_local std::vector<float> col;
  if (all.size() < batch.B) {
    all.resize(batch.B);
    std::iota(all.begin(), all.end(), 0u);
  }
  col.resize(batch.B);
  for (std::uint32_t q = 0; q < n; ++q) {
    dots(j0 + q, all.data(), col.data());
    const float b = batch.bias[j0 + q];
    for (std::size_t s = 0; s < batch.B; ++s) out[s * ld + q] = col[s] + b;
  }
}

// Scores rows j0..j0+n of `m` against the whole batch as one matrix product (engine/
// gemm_kernels.h): the rows, as fp32 (row_f32), are the columns of its right-hand operand, packed
// once for every sample. Returns false, having done nothing, where scoring row by row is faster:
// batches under kProductBatch, or a level without a SIMD product (docs/inference.md, "Exact
// path").
inline constexpr std::size_t kProductBatch = 64;
bool score_block_as_product(const OutputMatrix& m, const ScorerBatch& batch, std::uint32_t j0,
                            std::uint32_t n, float* out, std::size_t ld);

// Trainable fp32 rows with Adam moments (none in a model loaded for inference).
class F32OutputMatrix final : public OutputMatrix {
 public:
  explicit F32OutputMatrix(ParamMatrix w) : W_(std::move(w)) {}
  ParamMatrix& params() { return W_; }
  const ParamMatrix& params() const { return W_; }

  // Made from fp32 rows (OutputStorage says what it keeps), or empty for load().
  static std::unique_ptr<OutputMatrix> from_f32(ParamMatrix w, const OutputStorage& s);
  static std::unique_ptr<OutputMatrix> empty(std::uint32_t rows, std::uint32_t cols);
  std::unique_ptr<OutputMatrix> clone() const override;
  Precision precision() const override { return Precision::kF32; }
  std::uint32_t rows() const override { return W_.rows; }
  std::uint32_t cols() const override { return W_.cols; }
  std::size_t weight_bytes() const override { return std::size_t{W_.rows} * W_.cols * 4; }
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override;
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override;
  const float* row_f32(std::uint32_t j, float*) const override { return W_.row(j); }
  ParamMatrix release_as_f32() override;
  bool trainable() const override { return true; }
  bool has_optimizer_state() const override { return W_.has_moments(); }
  void ensure_moments() override { W_.ensure_moments(); }
  bool holds(const OutputStorage& s) const override { return s.precision == Precision::kF32; }
  std::unique_ptr<OutputLayerOps> training_ops(const ParamVector& bias,
                                               const TrainConfig& config) override;
  void save(ModelFileWriter& w, bool optimizer,
            const std::function<void()>& save_bias) const override;
  void load(const ModelFileReader& r, const StateFields& state, bool optimizer) override;

 private:
  ParamMatrix W_;
};

// bf16 rows: products against fp32 activations expand each weight exactly and sum in fp32.
class Bf16OutputMatrix final : public OutputMatrix {
 public:
  explicit Bf16OutputMatrix(Bf16Rows r) : R_(std::move(r)) {}
  Bf16Rows& storage() { return R_; }
  const Bf16Rows& storage() const { return R_; }

  // Made from fp32 rows (OutputStorage says what it keeps), or empty for load().
  static std::unique_ptr<OutputMatrix> from_f32(ParamMatrix w, const OutputStorage& s);
  static std::unique_ptr<OutputMatrix> empty(std::uint32_t rows, std::uint32_t cols);
  std::unique_ptr<OutputMatrix> clone() const override;
  Precision precision() const override { return Precision::kBF16; }
  std::uint32_t rows() const override { return R_.rows; }
  std::uint32_t cols() const override { return R_.cols; }
  std::size_t weight_bytes() const override { return std::size_t{R_.rows} * R_.cols * 2; }
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override;
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override;
  const float* row_f32(std::uint32_t j, float* buf) const override;
  ParamMatrix release_as_f32() override;
  bool trainable() const override { return true; }
  bool has_optimizer_state() const override { return R_.has_optimizer_state(); }
  bool holds(const OutputStorage& s) const override;
  std::unique_ptr<OutputLayerOps> training_ops(const ParamVector& bias,
                                               const TrainConfig& config) override;
  void save(ModelFileWriter& w, bool optimizer,
            const std::function<void()>& save_bias) const override;
  void load(const ModelFileReader& r, const StateFields& state, bool optimizer) override;

 private:
  Bf16Rows R_;
};

// int8 rows for inference: activations are quantized to u8 per sample, products summed in
// integers and scaled. The rows are shared by copies (they never change).
class Int8OutputMatrix final : public OutputMatrix {
 public:
  explicit Int8OutputMatrix(std::shared_ptr<const QuantizedRows> q) : Q_(std::move(q)) {}
  const QuantizedRows& storage() const { return *Q_; }

  // Made from fp32 rows (OutputStorage says what it keeps), or empty for load().
  static std::unique_ptr<OutputMatrix> from_f32(ParamMatrix w, const OutputStorage& s);
  static std::unique_ptr<OutputMatrix> empty(std::uint32_t rows, std::uint32_t cols);
  std::unique_ptr<OutputMatrix> clone() const override;
  Precision precision() const override { return Precision::kInt8; }
  std::uint32_t rows() const override { return Q_->rows; }
  std::uint32_t cols() const override { return Q_->cols; }
  std::size_t weight_bytes() const override {
    return std::size_t{Q_->rows} * (Q_->stride + sizeof(float));
  }
  void prepare(const float* H, std::size_t stride, std::size_t B, const float* bias,
               ScorerBatch& batch) const override;
  void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                   std::size_t ld) const override;
  void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows, std::size_t n,
                  float* out) const override;
  const float* row_f32(std::uint32_t j, float* buf) const override;
  ParamMatrix release_as_f32() override;
  bool trainable() const override { return false; }
  bool has_optimizer_state() const override { return false; }
  bool holds(const OutputStorage&) const override { return false; }
  std::unique_ptr<OutputLayerOps> training_ops(const ParamVector& bias,
                                               const TrainConfig& config) override;
  void save(ModelFileWriter& w, bool optimizer,
            const std::function<void()>& save_bias) const override;
  StateFields state_fields() const override;
  void load(const ModelFileReader& r, const StateFields& state, bool optimizer) override;

 private:
  std::shared_ptr<const QuantizedRows> Q_;
};

}  // namespace glide::engine
