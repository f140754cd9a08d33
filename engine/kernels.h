// The hot loops of training and inference behind one narrow table of function pointers, one per
// SIMD level that has its own (scalar reference, AVX2, AVX-512; higher levels use AVX-512's),
// chosen by the common dispatch (common/simd_dispatch.h). Every table is tested against the scalar
// one (tests/kernel_levels_test.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/cpu.h"
#include "common/simd_dispatch.h"

namespace glide::engine {

// One optimizer step. Adam, with bias correction folded into the step size:
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= step * m / (sqrt(v) + eps).
// Adagrad: v += g^2; w -= lr * g / (sqrt(v) + eps). SGD: w -= lr * g.
struct AdamStep {
  float step;  // lr * sqrt(1 - b2^t) / (1 - b1^t)
  float beta1, beta2, eps;
  float lr;  // the learning rate itself (SGD's step)
  static AdamStep at(float lr, float beta1, float beta2, float eps, std::uint64_t t);
};

struct Kernels {
  Isa isa;
  // sum a[i] * b[i]
  float (*dot)(const float* a, const float* b, std::size_t n);
  // y += a * x
  void (*axpy)(float a, const float* x, float* y, std::size_t n);
  // out[0..dim) = sum_k vals[k] * W[ids[k] * stride + 0..dim): a sparse input times row-major
  // weights stored one row per input feature.
  void (*sparse_matvec)(const std::uint32_t* ids, const float* vals, std::size_t nnz,
                        const float* W, std::size_t stride, std::size_t dim, float* out);
  // out[k] = w . X[rows[k] * stride + 0..dim): one neuron against the batch rows that activate it.
  void (*dot_rows)(const float* w, const float* X, std::size_t stride, const std::uint32_t* rows,
                   std::size_t count, std::size_t dim, float* out);
  // gw[0..dim) = sum_k coef[k] * X[rows[k] * stride + 0..dim): a neuron's weight gradient.
  void (*grad_rows)(const float* X, std::size_t stride, const std::uint32_t* rows,
                    const float* coef, std::size_t count, std::size_t dim, float* gw);
  // Both halves of a neuron's backward pass over the batch rows that activate it, in one sweep:
  // gw[0..dim) = sum_k coef[k] * X[rows[k]] and dX[rows[k]] += coef[k] * w for every k.
  void (*backward_rows)(const float* w, const float* X, float* dX, std::size_t stride,
                        const std::uint32_t* rows, const float* coef, std::size_t count,
                        std::size_t dim, float* gw);
  // A dense layer whose input is a sampled layer's output reads only the input's active entries
  // (idx: their positions, distinct; x: their values, packed):
  // sum_k w[idx[k]] * x[k]
  float (*gather_dot)(const float* w, const std::uint32_t* idx, const float* x, std::size_t n);
  // y[k] += a * w[idx[k]] (the input gradient at the active entries, packed)
  void (*gather_axpy)(float a, const float* w, const std::uint32_t* idx, float* y, std::size_t n);
  // y[idx[k]] += a * x[k] (a weight row's gradient from packed active inputs)
  void (*scatter_axpy)(float a, const float* x, const std::uint32_t* idx, float* y, std::size_t n);
  // Adam on n weights with gradient g.
  void (*adam)(float* w, float* m, float* v, const float* g, std::size_t n, const AdamStep& s);
  // Adagrad on n weights with gradient g (v: the running sum of squared gradients).
  void (*adagrad)(float* w, float* v, const float* g, std::size_t n, const AdamStep& s);
  // max of x[0..n), n >= 1
  float (*max)(const float* x, std::size_t n);
  // x[i] = exp(x[i] - shift); returns the sum
  float (*exp_shift_sum)(float* x, std::size_t n, float shift);
  // x[i] = max(x[i], 0)
  void (*relu)(float* x, std::size_t n);
  // Softmax down the columns of a batch's logits stored row by row (row r at z + base[r], n
  // columns, one per sample; c[r] added to row r, c null: 0), each column's max, exp and scale:
  // m[i] = max(m[i], z[base[r] + i] + c[r]) over every row r
  void (*rows_max)(const float* z, const std::uint64_t* base, const float* c, std::size_t rows,
                   std::size_t n, float* m);
  // z[base[r] + i] = exp(z[base[r] + i] + c[r] - m[i]); sum[i] += it
  void (*rows_exp_sum)(float* z, const std::uint64_t* base, const float* c, std::size_t rows,
                       std::size_t n, const float* m, float* sum);
  // z[base[r] + i] *= f[i]
  void (*rows_scale)(float* z, const std::uint64_t* base, std::size_t rows, std::size_t n,
                     const float* f);
};

// The fp32 family's tables by level.
const KernelDispatch<Kernels>& fp32_kernel_dispatch();
// The kernels for the active level (glide::active_isa()).
const Kernels& kernels();
// The kernels used at `isa` (see KernelDispatch::at).
const Kernels& kernels_for(Isa isa);

// Per-ISA tables, defined in kernels_*.cpp.
const Kernels& scalar_kernels();
const Kernels& avx2_kernels();
const Kernels& avx512_kernels();

}  // namespace glide::engine
