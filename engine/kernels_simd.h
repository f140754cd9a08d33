// The vectorized kernels, written once over an xsimd architecture and instantiated in one file
// per ISA (compiled with that ISA's flags). Included only by kernels_avx2.cpp and
// kernels_avx512.cpp; everything here has internal linkage so no ISA-specific code can leak
// into another translation unit through the linker.
#pragma once
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "engine/kernels.h"

namespace glide::engine {
namespace {

template <class Arch>
struct SimdKernels {
  using B = xsimd::batch<float, Arch>;
  static constexpr std::size_t W = B::size;

  static float dot(const float* a, const float* b, std::size_t n) {
    B acc0(0.f), acc1(0.f);
    std::size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
      acc1 = xsimd::fma(B::load_unaligned(a + i + W), B::load_unaligned(b + i + W), acc1);
    }
    for (; i + W <= n; i += W)
      acc0 = xsimd::fma(B::load_unaligned(a + i), B::load_unaligned(b + i), acc0);
    float s = xsimd::hadd(acc0 + acc1);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  static void axpy(float a, const float* x, float* y, std::size_t n) {
    const B va(a);
    std::size_t i = 0;
    for (; i + W <= n; i += W)
      xsimd::fma(va, B::load_unaligned(x + i), B::load_unaligned(y + i)).store_unaligned(y + i);
    for (; i < n; ++i) y[i] += a * x[i];
  }

  // Keeps a block of up to 8 vectors of the output in registers while streaming the rows, so
  // each output element is loaded and stored once per block instead of once per row.
  template <std::size_t V>
  static void axpy_rows_block(const float* base, std::size_t stride, const std::uint32_t* rows,
                              const float* coef, std::size_t count, float* out) {
    B acc[V];
    for (std::size_t v = 0; v < V; ++v) acc[v] = B(0.f);
    for (std::size_t k = 0; k < count; ++k) {
      const float* r = base + rows[k] * stride;
      const B c(coef[k]);
      for (std::size_t v = 0; v < V; ++v)
        acc[v] = xsimd::fma(c, B::load_unaligned(r + v * W), acc[v]);
    }
    for (std::size_t v = 0; v < V; ++v) acc[v].store_unaligned(out + v * W);
  }

  static void axpy_rows(const float* X, std::size_t stride, const std::uint32_t* rows,
                        const float* coef, std::size_t count, std::size_t dim, float* out) {
    constexpr std::size_t kBlock = 8 * W;
    std::size_t d = 0;
    for (; d + kBlock <= dim; d += kBlock)
      axpy_rows_block<8>(X + d, stride, rows, coef, count, out + d);
    for (; d + W <= dim; d += W) axpy_rows_block<1>(X + d, stride, rows, coef, count, out + d);
    if (d < dim) {
      for (std::size_t i = d; i < dim; ++i) out[i] = 0;
      for (std::size_t k = 0; k < count; ++k) {
        const float* r = X + rows[k] * stride;
        for (std::size_t i = d; i < dim; ++i) out[i] += coef[k] * r[i];
      }
    }
  }

  static void sparse_matvec(const std::uint32_t* ids, const float* vals, std::size_t nnz,
                            const float* W_, std::size_t stride, std::size_t dim, float* out) {
    axpy_rows(W_, stride, ids, vals, nnz, dim, out);
  }

  static void grad_rows(const float* X, std::size_t stride, const std::uint32_t* rows,
                        const float* coef, std::size_t count, std::size_t dim, float* gw) {
    axpy_rows(X, stride, rows, coef, count, dim, gw);
  }

  static void dot_rows(const float* w, const float* X, std::size_t stride,
                       const std::uint32_t* rows, std::size_t count, std::size_t dim, float* out) {
    // Four rows at a time: the weight row is loaded once per four dot products.
    std::size_t k = 0;
    for (; k + 4 <= count; k += 4) {
      const float* r0 = X + rows[k] * stride;
      const float* r1 = X + rows[k + 1] * stride;
      const float* r2 = X + rows[k + 2] * stride;
      const float* r3 = X + rows[k + 3] * stride;
      B a0(0.f), a1(0.f), a2(0.f), a3(0.f);
      std::size_t i = 0;
      for (; i + W <= dim; i += W) {
        const B wv = B::load_unaligned(w + i);
        a0 = xsimd::fma(wv, B::load_unaligned(r0 + i), a0);
        a1 = xsimd::fma(wv, B::load_unaligned(r1 + i), a1);
        a2 = xsimd::fma(wv, B::load_unaligned(r2 + i), a2);
        a3 = xsimd::fma(wv, B::load_unaligned(r3 + i), a3);
      }
      float s0 = xsimd::hadd(a0), s1 = xsimd::hadd(a1), s2 = xsimd::hadd(a2), s3 = xsimd::hadd(a3);
      for (; i < dim; ++i) {
        s0 += w[i] * r0[i];
        s1 += w[i] * r1[i];
        s2 += w[i] * r2[i];
        s3 += w[i] * r3[i];
      }
      out[k] = s0;
      out[k + 1] = s1;
      out[k + 2] = s2;
      out[k + 3] = s3;
    }
    for (; k < count; ++k) out[k] = dot(w, X + rows[k] * stride, dim);
  }

  // One block of up to 8 vectors: the weights and their gradient stay in registers while each
  // activating row is read once for the gradient and updated once for dX.
  template <std::size_t V>
  static void backward_block(const float* w, const float* X, float* dX, std::size_t stride,
                             const std::uint32_t* rows, const float* coef, std::size_t count,
                             float* gw) {
    B wv[V], acc[V];
    for (std::size_t v = 0; v < V; ++v) {
      wv[v] = B::load_unaligned(w + v * W);
      acc[v] = B(0.f);
    }
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t off = rows[k] * stride;
      const B c(coef[k]);
      const float* x = X + off;
      float* dx = dX + off;
      for (std::size_t v = 0; v < V; ++v) {
        acc[v] = xsimd::fma(c, B::load_unaligned(x + v * W), acc[v]);
        xsimd::fma(c, wv[v], B::load_unaligned(dx + v * W)).store_unaligned(dx + v * W);
      }
    }
    for (std::size_t v = 0; v < V; ++v) acc[v].store_unaligned(gw + v * W);
  }

  static void backward_rows(const float* w, const float* X, float* dX, std::size_t stride,
                            const std::uint32_t* rows, const float* coef, std::size_t count,
                            std::size_t dim, float* gw) {
    constexpr std::size_t kBlock = 8 * W;
    std::size_t d = 0;
    for (; d + kBlock <= dim; d += kBlock)
      backward_block<8>(w + d, X + d, dX + d, stride, rows, coef, count, gw + d);
    for (; d + W <= dim; d += W)
      backward_block<1>(w + d, X + d, dX + d, stride, rows, coef, count, gw + d);
    if (d < dim) {
      for (std::size_t i = d; i < dim; ++i) gw[i] = 0;
      for (std::size_t k = 0; k < count; ++k) {
        const float* x = X + rows[k] * stride;
        float* dx = dX + rows[k] * stride;
        for (std::size_t i = d; i < dim; ++i) {
          gw[i] += coef[k] * x[i];
          dx[i] += coef[k] * w[i];
        }
      }
    }
  }

  static void adam(float* w, float* m, float* v, const float* g, std::size_t n, const AdamStep& s) {
    const B b1(s.beta1), b2(s.beta2), c1(1 - s.beta1), c2(1 - s.beta2), step(s.step), eps(s.eps);
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B gv = B::load_unaligned(g + i);
      const B mv = xsimd::fma(b1, B::load_unaligned(m + i), c1 * gv);
      const B vv = xsimd::fma(b2, B::load_unaligned(v + i), c2 * gv * gv);
      mv.store_unaligned(m + i);
      vv.store_unaligned(v + i);
      (B::load_unaligned(w + i) - step * mv / (xsimd::sqrt(vv) + eps)).store_unaligned(w + i);
    }
    for (; i < n; ++i) {
      m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
      v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
      w[i] -= s.step * m[i] / (__builtin_sqrtf(v[i]) + s.eps);
    }
  }

  static void adagrad(float* w, float* v, const float* g, std::size_t n, const AdamStep& s) {
    const B lr(s.lr), eps(s.eps);
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B gv = B::load_unaligned(g + i);
      const B vv = xsimd::fma(gv, gv, B::load_unaligned(v + i));
      vv.store_unaligned(v + i);
      (B::load_unaligned(w + i) - lr * gv / (xsimd::sqrt(vv) + eps)).store_unaligned(w + i);
    }
    for (; i < n; ++i) {
      v[i] += g[i] * g[i];
      w[i] -= s.lr * g[i] / (__builtin_sqrtf(v[i]) + s.eps);
    }
  }

  using I = xsimd::batch<std::int32_t, Arch>;
  static I indices(const std::uint32_t* idx) {
    return I::load_unaligned(reinterpret_cast<const std::int32_t*>(idx));
  }

  static float gather_dot(const float* w, const std::uint32_t* idx, const float* x, std::size_t n) {
    B acc(0.f);
    std::size_t k = 0;
    for (; k + W <= n; k += W)
      acc = xsimd::fma(B::gather(w, indices(idx + k)), B::load_unaligned(x + k), acc);
    float s = xsimd::hadd(acc);
    for (; k < n; ++k) s += w[idx[k]] * x[k];
    return s;
  }

  static void gather_axpy(float a, const float* w, const std::uint32_t* idx, float* y,
                          std::size_t n) {
    const B va(a);
    std::size_t k = 0;
    for (; k + W <= n; k += W)
      xsimd::fma(va, B::gather(w, indices(idx + k)), B::load_unaligned(y + k))
          .store_unaligned(y + k);
    for (; k < n; ++k) y[k] += a * w[idx[k]];
  }

  // Distinct indices: a vector's lanes never collide, so gather, add, scatter is exact.
  static void scatter_axpy(float a, const float* x, const std::uint32_t* idx, float* y,
                           std::size_t n) {
    const B va(a);
    std::size_t k = 0;
    for (; k + W <= n; k += W) {
      const I i = indices(idx + k);
      xsimd::fma(va, B::load_unaligned(x + k), B::gather(y, i)).scatter(y, i);
    }
    for (; k < n; ++k) y[idx[k]] += a * x[k];
  }

  static float max(const float* x, std::size_t n) {
    float r = x[0];
    std::size_t i = 0;
    if (n >= W) {
      B acc = B::load_unaligned(x);
      for (i = W; i + W <= n; i += W) acc = xsimd::max(acc, B::load_unaligned(x + i));
      alignas(64) float lanes[W];
      acc.store_aligned(lanes);
      r = lanes[0];
      for (std::size_t l = 1; l < W; ++l) r = lanes[l] > r ? lanes[l] : r;
    }
    for (; i < n; ++i) r = x[i] > r ? x[i] : r;
    return r;
  }

  static float exp_shift_sum(float* x, std::size_t n, float shift) {
    const B sh(shift);
    B acc(0.f);
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B e = xsimd::exp(B::load_unaligned(x + i) - sh);
      e.store_unaligned(x + i);
      acc += e;
    }
    float s = xsimd::hadd(acc);
    for (; i < n; ++i) {
      x[i] = std::exp(x[i] - shift);  // libm, not an inline that could leak across ISAs
      s += x[i];
    }
    return s;
  }

  static void relu(float* x, std::size_t n) {
    const B zero(0.f);
    std::size_t i = 0;
    for (; i + W <= n; i += W) xsimd::max(B::load_unaligned(x + i), zero).store_unaligned(x + i);
    for (; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0;
  }

  static void rows_max(const float* z, const std::uint64_t* base, const float* c, std::size_t rows,
                       std::size_t n, float* m) {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      B acc = B::load_unaligned(m + i);
      for (std::size_t r = 0; r < rows; ++r)
        acc = xsimd::max(acc, B::load_unaligned(z + base[r] + i) + B(c ? c[r] : 0.0f));
      acc.store_unaligned(m + i);
    }
    for (; i < n; ++i)
      for (std::size_t r = 0; r < rows; ++r) {
        const float v = z[base[r] + i] + (c ? c[r] : 0.0f);
        m[i] = v > m[i] ? v : m[i];
      }
  }

  static void rows_exp_sum(float* z, const std::uint64_t* base, const float* c, std::size_t rows,
                           std::size_t n, const float* m, float* sum) {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B mi = B::load_unaligned(m + i);
      B acc = B::load_unaligned(sum + i);
      for (std::size_t r = 0; r < rows; ++r) {
        float* x = z + base[r] + i;
        const B e = xsimd::exp(B::load_unaligned(x) + B(c ? c[r] : 0.0f) - mi);
        e.store_unaligned(x);
        acc += e;
      }
      acc.store_unaligned(sum + i);
    }
    for (; i < n; ++i)
      for (std::size_t r = 0; r < rows; ++r) {
        float& x = z[base[r] + i];
        x = std::exp(x + (c ? c[r] : 0.0f) - m[i]);  // libm, as in exp_shift_sum
        sum[i] += x;
      }
  }

  static void rows_scale(float* z, const std::uint64_t* base, std::size_t rows, std::size_t n,
                         const float* f) {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B fi = B::load_unaligned(f + i);
      for (std::size_t r = 0; r < rows; ++r)
        (B::load_unaligned(z + base[r] + i) * fi).store_unaligned(z + base[r] + i);
    }
    for (; i < n; ++i)
      for (std::size_t r = 0; r < rows; ++r) z[base[r] + i] *= f[i];
  }

  static Kernels table(Isa isa) {
    return Kernels{isa,       dot,           axpy,       sparse_matvec, dot_rows,
                   grad_rows, backward_rows, gather_dot, gather_axpy,   scatter_axpy,
                   adam,      adagrad,       max,        exp_shift_sum, relu,
                   rows_max,  rows_exp_sum,  rows_scale};
  }
};

}  // namespace
}  // namespace glide::engine
