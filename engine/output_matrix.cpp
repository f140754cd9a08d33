#include "engine/output_matrix.h"

#include <tbb/parallel_for.h>

#include <cstring>

#include "common/error.h"
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

std::unique_ptr<OutputMatrix> f32_from_f32(ParamMatrix w, const OutputStorage&) {
  return std::make_unique<F32OutputMatrix>(std::move(w));
}
std::unique_ptr<OutputMatrix> f32_empty(std::uint32_t rows, std::uint32_t cols) {
  ParamMatrix w;
  w.rows = rows;
  w.cols = cols;
  w.stride = padded(cols);
  return std::make_unique<F32OutputMatrix>(std::move(w));
}

std::unique_ptr<OutputMatrix> bf16_from_f32(ParamMatrix W, const OutputStorage& s) {
  if (s.optimizer) W.ensure_moments();
  Bf16Rows R(W.rows, W.cols);
  if (s.optimizer && s.f32_moments) {
    R.mf = std::move(W.m);  // same padded stride
    R.vf = std::move(W.v);
  } else if (s.optimizer) {
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
  return std::make_unique<Bf16OutputMatrix>(std::move(R));
}
std::unique_ptr<OutputMatrix> bf16_empty(std::uint32_t rows, std::uint32_t cols) {
  Bf16Rows R;
  R.rows = rows;
  R.cols = cols;
  R.stride = padded_bf16(cols);
  return std::make_unique<Bf16OutputMatrix>(std::move(R));
}

std::unique_ptr<OutputMatrix> int8_from_f32(ParamMatrix W, const OutputStorage& s) {
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
std::unique_ptr<OutputMatrix> int8_empty(std::uint32_t rows, std::uint32_t cols) {
  auto Q = std::make_shared<QuantizedRows>();
  Q->rows = rows;
  Q->cols = cols;
  Q->stride = QuantizedRows::stride_for(cols);
  return std::make_unique<Int8OutputMatrix>(std::move(Q));
}

constexpr StorageKind kStorages[] = {
    {Precision::kF32, "fp32", f32_from_f32, f32_empty},
    {Precision::kBF16, "bf16", bf16_from_f32, bf16_empty},
    {Precision::kInt8, "int8", int8_from_f32, int8_empty},
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
  for (const StorageKind& k : kStorages)
    if (s == k.name) return k.precision;
  fail("precision must be fp32, bf16 or int8, got '" + s + "'");
}

std::unique_ptr<OutputMatrix> make_output_matrix(ParamMatrix w, const OutputStorage& storage) {
  return storage_kind(storage.precision).from_f32(std::move(w), storage);
}

std::unique_ptr<OutputMatrix> make_output_matrix(Precision p, std::uint32_t rows,
                                                 std::uint32_t cols) {
  return storage_kind(p).empty(rows, cols);
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
