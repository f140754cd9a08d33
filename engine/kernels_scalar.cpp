// The reference kernels: plain loops in double-free float arithmetic, the ground truth every
// vectorized path is tested against.
#include <cmath>

#include "engine/kernels.h"

namespace glide::engine {

namespace {

float dot(const float* a, const float* b, std::size_t n) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void sparse_matvec(const std::uint32_t* ids, const float* vals, std::size_t nnz, const float* W,
                   std::size_t stride, std::size_t dim, float* out) {
  for (std::size_t i = 0; i < dim; ++i) out[i] = 0;
  for (std::size_t k = 0; k < nnz; ++k) axpy(vals[k], W + ids[k] * stride, out, dim);
}

void dot_rows(const float* w, const float* X, std::size_t stride, const std::uint32_t* rows,
              std::size_t count, std::size_t dim, float* out) {
  for (std::size_t k = 0; k < count; ++k) out[k] = dot(w, X + rows[k] * stride, dim);
}

void grad_rows(const float* X, std::size_t stride, const std::uint32_t* rows, const float* coef,
               std::size_t count, std::size_t dim, float* gw) {
  for (std::size_t i = 0; i < dim; ++i) gw[i] = 0;
  for (std::size_t k = 0; k < count; ++k) axpy(coef[k], X + rows[k] * stride, gw, dim);
}

void backward_rows(const float* w, const float* X, float* dX, std::size_t stride,
                   const std::uint32_t* rows, const float* coef, std::size_t count, std::size_t dim,
                   float* gw) {
  grad_rows(X, stride, rows, coef, count, dim, gw);
  for (std::size_t k = 0; k < count; ++k) axpy(coef[k], w, dX + rows[k] * stride, dim);
}

float gather_dot(const float* w, const std::uint32_t* idx, const float* x, std::size_t n) {
  float s = 0;
  for (std::size_t k = 0; k < n; ++k) s += w[idx[k]] * x[k];
  return s;
}

void gather_axpy(float a, const float* w, const std::uint32_t* idx, float* y, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) y[k] += a * w[idx[k]];
}

void scatter_axpy(float a, const float* x, const std::uint32_t* idx, float* y, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) y[idx[k]] += a * x[k];
}

void adam(float* w, float* m, float* v, const float* g, std::size_t n, const AdamStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
    v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
    w[i] -= s.step * m[i] / (std::sqrt(v[i]) + s.eps);
  }
}

void adagrad(float* w, float* v, const float* g, std::size_t n, const AdamStep& s) {
  for (std::size_t i = 0; i < n; ++i) {
    v[i] += g[i] * g[i];
    w[i] -= s.lr * g[i] / (std::sqrt(v[i]) + s.eps);
  }
}

float max(const float* x, std::size_t n) {
  float r = x[0];
  for (std::size_t i = 1; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

float exp_shift_sum(float* x, std::size_t n, float shift) {
  float s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return s;
}

void relu(float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0;
}

void rows_max(const float* z, const std::uint64_t* base, const float* c, std::size_t rows,
              std::size_t n, float* m) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = z + base[r];
    const float cr = c ? c[r] : 0.0f;
    for (std::size_t i = 0; i < n; ++i) m[i] = x[i] + cr > m[i] ? x[i] + cr : m[i];
  }
}

void rows_exp_sum(float* z, const std::uint64_t* base, const float* c, std::size_t rows,
                  std::size_t n, const float* m, float* sum) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* x = z + base[r];
    const float cr = c ? c[r] : 0.0f;
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = std::exp(x[i] + cr - m[i]);
      sum[i] += x[i];
    }
  }
}

void rows_scale(float* z, const std::uint64_t* base, std::size_t rows, std::size_t n,
                const float* f) {
  for (std::size_t r = 0; r < rows; ++r) {
    float* x = z + base[r];
    for (std::size_t i = 0; i < n; ++i) x[i] *= f[i];
  }
}

}  // namespace

const Kernels& scalar_kernels() {
  static const Kernels k{Isa::kScalar, dot,           axpy,       sparse_matvec, dot_rows,
                         grad_rows,    backward_rows, gather_dot, gather_axpy,   scatter_axpy,
                         adam,         adagrad,       max,        exp_shift_sum, relu,
                         rows_max,     rows_exp_sum,  rows_scale};
  return k;
}

}  // namespace glide::engine
