// The output layer's weights behind one narrow interface, so prediction and evaluation work the
// same on every storage: fp32 (the trainable ParamMatrix), bf16 (trained with --precision bf16
// or converted by `glide quantize --to bf16`) or int8 (s8 rows with a scale per row, made by
// `glide quantize`; inference only). A RowScorer scores output rows against a
// batch of last-hidden activations, bias included.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "engine/config.h"
#include "engine/kernels_bf16.h"
#include "engine/params.h"
#include "quant/quantize.h"

namespace glide::engine {

class Network;
class OutputSampler;

enum class Precision { kF32, kInt8, kBF16 };
const char* precision_name(Precision p);  // "fp32", "int8", "bf16"
Precision parse_precision(const std::string& s);

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

// A batch of last-hidden activations as a scorer needs them (for int8: quantized per sample).
struct ScorerBatch {
  const float* H = nullptr;  // B rows of `stride` floats
  std::size_t stride = 0, B = 0;
  AlignedArray<std::uint8_t> q;  // int8 scorer: u8 activations, B rows of q_stride bytes
  std::size_t q_stride = 0;
  std::vector<float> q_scale;  // per sample
};

class RowScorer {
 public:
  virtual ~RowScorer() = default;
  virtual Precision precision() const = 0;
  virtual std::uint32_t rows() const = 0;
  // Bytes of output weights (and scales) read to score every row once.
  virtual std::size_t weight_bytes() const = 0;
  // Prepares B activation rows (the memory must stay valid while `batch` is used).
  virtual void prepare(const float* H, std::size_t stride, std::size_t B,
                       ScorerBatch& batch) const = 0;
  // out[s * ld + q] = score of output row j0 + q for sample s, for q < n and every sample.
  virtual void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                           std::size_t ld) const = 0;
  // out[q] = score of output row rows[q] for sample s.
  virtual void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows,
                          std::size_t n, float* out) const = 0;
};

// The scorer of the network's output layer (int8 when the network holds quantized rows). A view:
// the network must outlive it.
std::unique_ptr<RowScorer> make_output_scorer(const Network& net);

// Replaces the network's fp32 output weights by int8 rows (the fp32 matrix and its Adam moments
// are freed; hidden layers stay fp32). Inference only from then on.
void quantize_output(Network& net, quant::Granularity g);

// Replaces the network's fp32 output weights by bf16 rows rounded to nearest even. With
// `optimizer`, the Adam moments are kept too: rounded to bf16, or kept fp32 with `f32_moments`.
void output_to_bf16(Network& net, bool optimizer, bool f32_moments = false);
// Expands bf16 output rows (and moments) back to fp32, exactly.
void output_to_f32(Network& net);

// The output weights as floats (dequantized for int8, expanded for bf16), for building LSH
// tables.
ParamMatrix output_as_f32(const Network& net);

// LSH tables over the output rows for sampled inference (from the fp32 values of int8 or bf16
// rows).
std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const Config& config, const Network& net);

// Throws glide::Error "WHERE: is an int8-quantized inference model ..." when `net` cannot be
// trained (its output layer is quantized).
void require_trainable(const Network& net, const std::string& where);

}  // namespace glide::engine
