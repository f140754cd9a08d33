// bf16 output rows (docs/model-format.md: after output.bias, output.weight bf16 [rows, stride]
// and, with optimizer state, output.adam_m / adam_v in bf16 [rows, stride] or, for
// --precision bf16-w, in f32 [rows, padded(cols)]).
#include <tbb/parallel_for.h>

#include "common/error.h"
#include "engine/model_file.h"
#include "engine/output_ops.h"
#include "engine/output_weights.h"

namespace glide::engine {

std::unique_ptr<OutputMatrix> Bf16OutputMatrix::from_f32(ParamMatrix W, const OutputStorage& s) {
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

std::unique_ptr<OutputMatrix> Bf16OutputMatrix::empty(std::uint32_t rows, std::uint32_t cols) {
  Bf16Rows R;
  R.rows = rows;
  R.cols = cols;
  R.stride = padded_bf16(cols);
  return std::make_unique<Bf16OutputMatrix>(std::move(R));
}

std::unique_ptr<OutputMatrix> Bf16OutputMatrix::clone() const {
  return std::make_unique<Bf16OutputMatrix>(R_);
}

void Bf16OutputMatrix::score_block(const ScorerBatch& batch, std::uint32_t j0, std::uint32_t n,
                                   float* out, std::size_t ld) const {
  if (score_block_as_product(*this, batch, j0, n, out, ld)) return;
  const Bf16Kernels& k = bf16_kernels();
  score_block_by_rows(batch, j0, n, out, ld,
                      [&](std::uint32_t j, const std::uint32_t* all, float* col) {
                        k.dot_rows_bf(R_.row(j), batch.H, batch.stride, all, batch.B, R_.cols, col);
                      });
}

void Bf16OutputMatrix::score_rows(const ScorerBatch& batch, std::size_t s,
                                  const std::uint32_t* rows, std::size_t n, float* out) const {
  const Bf16Kernels& k = bf16_kernels();
  const float* h = batch.H + s * batch.stride;
  for (std::size_t q = 0; q < n; ++q)
    out[q] = k.dot_f32(R_.row(rows[q]), h, R_.cols) + batch.bias[rows[q]];
}

const float* Bf16OutputMatrix::row_f32(std::uint32_t j, float* buf) const {
  const bf16* r = R_.row(j);
  for (std::uint32_t c = 0; c < R_.cols; ++c) buf[c] = bf16_to_f32(r[c]);
  return buf;
}

ParamMatrix Bf16OutputMatrix::release_as_f32() {
  const Bf16Rows& R = R_;
  ParamMatrix W(R.rows, R.cols);  // with moments: zero ones where the rows have none
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
  R_ = Bf16Rows();
  return W;
}

bool Bf16OutputMatrix::holds(const OutputStorage& s) const {
  return s.precision == Precision::kBF16 && R_.has_optimizer_state() &&
         R_.mf.empty() != s.f32_moments;
}

std::unique_ptr<OutputLayerOps> Bf16OutputMatrix::training_ops(const ParamVector& bias,
                                                               const TrainConfig& config) {
  if (!R_.has_optimizer_state()) fail("bf16 output rows without optimizer state cannot be trained");
  return make_bf16_ops(R_, bias, config);
}

void Bf16OutputMatrix::save(ModelFileWriter& w, bool optimizer,
                            const std::function<void()>& save_bias) const {
  save_bias();
  const std::vector<std::uint64_t> shape{R_.rows, R_.stride};
  w.add("output.weight", DType::kBF16, shape, std::as_bytes(R_.w.span()));
  if (optimizer && !R_.m.empty()) {
    w.add("output.adam_m", DType::kBF16, shape, std::as_bytes(R_.m.span()));
    w.add("output.adam_v", DType::kBF16, shape, std::as_bytes(R_.v.span()));
  } else if (optimizer) {  // bf16 weights with fp32 moments (--precision bf16-w)
    const std::vector<std::uint64_t> fshape{R_.rows, R_.f32_stride()};
    w.add("output.adam_m", DType::kF32, fshape, std::as_bytes(R_.mf.span()));
    w.add("output.adam_v", DType::kF32, fshape, std::as_bytes(R_.vf.span()));
  }
}

void Bf16OutputMatrix::load(const ModelFileReader& r, const StateFields&, bool optimizer) {
  Bf16Rows h(R_.rows, R_.cols);
  const std::vector<std::uint64_t> shape{h.rows, h.stride};
  r.read_into("output.weight", DType::kBF16, shape, std::as_writable_bytes(h.w.span()));
  if (optimizer) {
    if (r.info("output.adam_m").dtype == DType::kF32) {  // fp32 moments (bf16-w)
      const std::vector<std::uint64_t> fshape{h.rows, h.f32_stride()};
      h.mf = AlignedArray<float>(std::size_t{h.rows} * h.f32_stride());
      h.vf = AlignedArray<float>(h.mf.size());
      r.read_into("output.adam_m", DType::kF32, fshape, std::as_writable_bytes(h.mf.span()));
      r.read_into("output.adam_v", DType::kF32, fshape, std::as_writable_bytes(h.vf.span()));
    } else {
      h.m = AlignedArray<bf16>(h.w.size());
      h.v = AlignedArray<bf16>(h.w.size());
      r.read_into("output.adam_m", DType::kBF16, shape, std::as_writable_bytes(h.m.span()));
      r.read_into("output.adam_v", DType::kBF16, shape, std::as_writable_bytes(h.v.span()));
    }
  }
  R_ = std::move(h);
}

}  // namespace glide::engine
