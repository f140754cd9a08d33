// The output layer's rows (one of last_hidden() weights per label) behind one interface, whatever
// their storage: fp32 (trainable), bf16 (trained with --precision bf16 / bf16-w or converted by
// `glide quantize --to bf16`; Adam moments in bf16, in fp32 or none) or int8 (s8 rows with a
// scale per row or per tensor, `glide quantize`; inference only). Prediction, training, the LSH
// tables and the model file all go through it, so none of them asks which storage it holds; the
// implementations are in engine/output_weights.h. A new storage is one class there plus one line
// in the table of output_matrix.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/aligned.h"
#include "engine/config.h"
#include "engine/params.h"
#include "quant/quantize.h"

namespace glide::engine {

class Network;
class OutputSampler;
class OutputLayerOps;
class ModelFileReader;
class ModelFileWriter;

enum class Precision { kF32, kInt8, kBF16 };
const char* precision_name(Precision p);  // "fp32", "int8", "bf16"
Precision parse_precision(const std::string& s);

// A batch of last-hidden activations as a matrix scores them (for int8: quantized per sample),
// with the output bias the scores include.
struct ScorerBatch {
  const float* H = nullptr;  // B rows of `stride` floats
  std::size_t stride = 0, B = 0;
  const float* bias = nullptr;   // one per output row
  AlignedArray<std::uint8_t> q;  // int8: u8 activations, B rows of q_stride bytes
  std::size_t q_stride = 0;
  std::vector<float> q_scale;  // per sample
};

// How a matrix is made from fp32 rows: the storage, and what it keeps of the Adam moments.
struct OutputStorage {
  Precision precision = Precision::kF32;
  bool optimizer = true;     // bf16: keep the moments (rounded to bf16, or fp32 with f32_moments)
  bool f32_moments = false;  // bf16: fp32 moments (--precision bf16-w)
  quant::Granularity granularity = quant::Granularity::kRow;  // int8
};

// String fields of the model file's 'state' section (a storage records its options there).
using StateFields = std::map<std::string, std::string>;

class OutputMatrix {
 public:
  virtual ~OutputMatrix() = default;
  // A copy (an int8 matrix shares its read-only rows with the copy).
  virtual std::unique_ptr<OutputMatrix> clone() const = 0;
  virtual Precision precision() const = 0;
  virtual std::uint32_t rows() const = 0;
  virtual std::uint32_t cols() const = 0;
  // Bytes of weights (and scales) read to score every row once.
  virtual std::size_t weight_bytes() const = 0;

  // ---- Scoring (prediction, evaluation): bias included ----
  // Prepares B activation rows (the memory, and `bias`, must stay valid while `batch` is used).
  // By default the batch points at them; a storage that scores another form of the activations
  // (int8) makes it here.
  virtual void prepare(const float* H, std::size_t stride, std::size_t B, const float* bias,
                       ScorerBatch& batch) const;
  // out[s * ld + q] = score of row j0 + q for sample s, for q < n and every sample.
  virtual void score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n, float* out,
                           std::size_t ld) const = 0;
  // out[q] = score of row rows[q] for sample s.
  virtual void score_rows(const ScorerBatch& batch, std::size_t s, const std::uint32_t* rows,
                          std::size_t n, float* out) const = 0;

  // ---- The rows as fp32 (LSH tables, conversions) ----
  // Row j's cols() weights as floats: in place for fp32 rows, else written to `buf` (cols()
  // floats) and returned.
  virtual const float* row_f32(std::uint32_t j, float* buf) const = 0;
  // Every row through row_f32; the matrix must outlive its use (background rebuilds included).
  RowsF32 rows_f32() const;
  // A copy of the weights in fp32 (no Adam moments).
  ParamMatrix to_f32() const;
  // Gives up the rows as fp32, with fp32 Adam moments when this storage keeps moments (zero ones
  // when it could but has none); the matrix is left empty. Exact for fp32 and bf16.
  virtual ParamMatrix release_as_f32() = 0;

  // ---- Training ----
  virtual bool trainable() const = 0;
  virtual bool has_optimizer_state() const = 0;
  // Adds zeroed moments where an fp32 matrix loaded for inference has none.
  virtual void ensure_moments() {}
  // Whether these rows are what `s` asks for (storage and moments), ready to train.
  virtual bool holds(const OutputStorage& s) const = 0;
  // The row operations of a training run (config.precision) on these rows and `bias`; the
  // matrix and bias must outlive them. Throws when the matrix cannot be trained.
  virtual std::unique_ptr<OutputLayerOps> training_ops(const ParamVector& bias,
                                                       const TrainConfig& config) = 0;

  // ---- Model file (docs/model-format.md) ----
  // Adds the matrix's sections (Adam moments with `optimizer`); calls save_bias where the
  // format puts the output bias: after fp32 rows, before the sections of later storages.
  virtual void save(ModelFileWriter& w, bool optimizer,
                    const std::function<void()>& save_bias) const = 0;
  // What the storage records in the 'state' section besides its precision.
  virtual StateFields state_fields() const { return {}; }
  // Reads the sections save() wrote into this (empty) matrix of the configured shape.
  virtual void load(const ModelFileReader& r, const StateFields& state, bool optimizer) = 0;
};

// Owns a network's output matrix; copying clones it, so a Network stays copyable.
class OutputMatrixPtr : public std::unique_ptr<OutputMatrix> {
 public:
  OutputMatrixPtr() = default;
  OutputMatrixPtr(std::unique_ptr<OutputMatrix> p) : std::unique_ptr<OutputMatrix>(std::move(p)) {}
  OutputMatrixPtr(const OutputMatrixPtr& o)
      : std::unique_ptr<OutputMatrix>(o ? o->clone() : nullptr) {}
  OutputMatrixPtr(OutputMatrixPtr&&) = default;
  OutputMatrixPtr& operator=(const OutputMatrixPtr& o) {
    if (this != &o) reset(o ? o->clone().release() : nullptr);
    return *this;
  }
  OutputMatrixPtr& operator=(OutputMatrixPtr&&) = default;
};

// A matrix of `storage` made from fp32 rows `w` (and their moments).
std::unique_ptr<OutputMatrix> make_output_matrix(ParamMatrix w, const OutputStorage& storage);
// An empty matrix of the given precision and shape, for OutputMatrix::load.
std::unique_ptr<OutputMatrix> make_output_matrix(Precision p, std::uint32_t rows,
                                                 std::uint32_t cols);

// Replaces the network's output rows by int8 rows (fp32 weights and moments are freed; hidden
// layers stay fp32). Inference only from then on.
void quantize_output(Network& net, quant::Granularity g);

// Replaces the network's fp32 output rows by bf16 rows rounded to nearest even. With
// `optimizer`, the Adam moments are kept too: rounded to bf16, or kept fp32 with `f32_moments`.
void output_to_bf16(Network& net, bool optimizer, bool f32_moments = false);
// Expands the output rows (and moments) back to fp32: exactly, from bf16.
void output_to_f32(Network& net);

// LSH tables over the output rows for sampled inference (hashed as fp32).
std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const Config& config, const Network& net);

// Throws glide::Error "WHERE: is an int8-quantized inference model ..." when `net` cannot be
// trained (its output layer is quantized).
void require_trainable(const Network& net, const std::string& where);

}  // namespace glide::engine
