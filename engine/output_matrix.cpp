#include "engine/output_matrix.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstring>
#include <iterator>

#include "common/error.h"
#include "engine/gemm_kernels.h"
#include "engine/network.h"
#include "engine/output_sampler.h"
#include "engine/output_weights.h"

namespace glide::engine {

namespace {

// Every storage: its name in files and flags, how it is made from fp32 rows, and an empty one to
// load into. The one place a storage is chosen.
struct StorageKind {
  Precision precision;
  const char* name;
  std::unique_ptr<OutputMatrix> (*from_f32)(ParamMatrix w, const OutputStorage& s);
  std::unique_ptr<OutputMatrix> (*empty)(std::uint32_t rows, std::uint32_t cols);
};

constexpr StorageKind kStorages[] = {
    {Precision::kF32, "fp32", F32OutputMatrix::from_f32, F32OutputMatrix::empty},
    {Precision::kBF16, "bf16", Bf16OutputMatrix::from_f32, Bf16OutputMatrix::empty},
    {Precision::kInt8, "int8", Int8OutputMatrix::from_f32, Int8OutputMatrix::empty},
};

const StorageKind& storage_kind(Precision p) {
  for (const StorageKind& k : kStorages)
    if (k.precision == p) return k;
  fail("unknown output precision");
}

}  // namespace

const char* precision_name(Precision p) {
  return storage_kind(p).name;
}

Precision parse_precision(const std::string& s) {
  std::string names;  // "fp32, bf16 or int8"
  const std::size_t n = std::size(kStorages);
  for (std::size_t i = 0; i < n; ++i) {
    if (s == kStorages[i].name) return kStorages[i].precision;
    names += i == 0 ? "" : i + 1 == n ? " or " : ", ";
    names += kStorages[i].name;
  }
  fail("precision must be " + names + ", got '" + s + "'");
}

std::unique_ptr<OutputMatrix> make_output_matrix(ParamMatrix w, const OutputStorage& storage) {
  return storage_kind(storage.precision).from_f32(std::move(w), storage);
}

std::unique_ptr<OutputMatrix> make_output_matrix(Precision p, std::uint32_t rows,
                                                 std::uint32_t cols) {
  return storage_kind(p).empty(rows, cols);
}

void OutputMatrix::prepare(const float* H, std::size_t stride, std::size_t B, const float* bias,
                           ScorerBatch& batch) const {
  batch.H = H;
  batch.stride = stride;
  batch.B = B;
  batch.bias = bias;
}

bool score_block_as_product(const OutputMatrix& m, const ScorerBatch& batch, std::uint32_t j0,
                            std::uint32_t n, float* out, std::size_t ld) {
  const GemmKernels& g = gemm_kernels();
  if (batch.B < kProductBatch || &g == &gemm_kernel_dispatch().scalar()) return false;
  const std::size_t k = m.cols();
  // Rows copied 16 at a time: each row of the copy gets a cache line's run of them.
  constexpr std::uint32_t kRun = 16;
  thread_local std::vector<float> columns, buffers;
  thread_local PackedB packed;
  columns.resize(k * n);
  buffers.resize(kRun * k);
  const float* rows[kRun];
  for (std::uint32_t q0 = 0; q0 < n; q0 += kRun) {
    const std::uint32_t run = std::min(kRun, n - q0);
    for (std::uint32_t t = 0; t < run; ++t) rows[t] = m.row_f32(j0 + q0 + t, &buffers[t * k]);
    for (std::size_t p = 0; p < k; ++p)
      for (std::uint32_t t = 0; t < run; ++t) columns[p * n + q0 + t] = rows[t][p];
  }
  g.pack_b(columns.data(), n, 1, k, n, packed);
  for (std::size_t s = 0; s < batch.B; ++s)
    std::copy(batch.bias + j0, batch.bias + j0 + n, out + s * ld);
  g.gemm(batch.H, batch.stride, 1, batch.B, packed, out, ld);
  return true;
}

RowsF32 OutputMatrix::rows_f32() const {
  return {rows(), cols(), [this, n = padded(cols())](std::size_t i) {
            thread_local std::vector<float> buf;
            if (buf.size() < n) buf.assign(n, 0.0f);
            return row_f32(static_cast<std::uint32_t>(i), buf.data());
          }};
}

ParamMatrix OutputMatrix::to_f32() const {
  ParamMatrix m;  // weights only: no Adam moments
  m.rows = rows();
  m.cols = cols();
  m.stride = padded(m.cols);
  m.w = AlignedArray<float>(std::size_t{m.rows} * m.stride);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, m.rows, 4096), [&](const auto& r) {
    for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
      float* dst = m.row(j);
      const float* src = row_f32(j, dst);
      if (src != dst) std::memcpy(dst, src, m.cols * sizeof(float));
    }
  });
  return m;
}

void quantize_output(Network& net, quant::Granularity g) {
  if (net.output->precision() == Precision::kInt8) fail("the output layer is already quantized");
  net.output = make_output_matrix(net.output->release_as_f32(),
                                  {.precision = Precision::kInt8, .granularity = g});
}

void output_to_bf16(Network& net, bool optimizer, bool f32_moments) {
  if (net.output->precision() == Precision::kInt8)
    fail("the output layer is int8-quantized; it cannot be converted to bf16");
  if (net.output->precision() == Precision::kBF16) fail("the output layer is already bf16");
  net.output = make_output_matrix(
      net.output->release_as_f32(),
      {.precision = Precision::kBF16, .optimizer = optimizer, .f32_moments = f32_moments});
}

void output_to_f32(Network& net) {
  if (net.output->precision() == Precision::kF32) return;
  net.output = make_output_matrix(net.output->release_as_f32(), {.precision = Precision::kF32});
}

std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const Config& config,
                                                          const Network& net) {
  return make_inference_lsh_sampler(config.net, config.train, net.output->rows_f32(),
                                    net.output_bias.w.span());
}

void require_trainable(const Network& net, const std::string& where) {
  if (!net.output->trainable())
    fail(where, std::string("is an int8-quantized inference model (precision ") +
                    precision_name(net.output->precision()) +
                    "); it cannot be trained or resumed: train the fp32 model and quantize it "
                    "again");
}

}  // namespace glide::engine
