// Trainable parameters with their Adam state, in one 64-byte aligned arena each, rows padded to
// the SIMD width so every row starts on a cache line.
#pragma once
#include <cstdint>
#include <functional>

#include "common/aligned.h"
#include "common/rng.h"

namespace glide::engine {

constexpr std::size_t kRowAlign = 16;  // floats: one 64-byte cache line, one zmm register

inline std::size_t padded(std::size_t n) {
  return (n + kRowAlign - 1) / kRowAlign * kRowAlign;
}

// rows x cols weights (row-major, stride = padded(cols)) with Adam's first and second moments.
struct ParamMatrix {
  std::uint32_t rows = 0, cols = 0;
  std::size_t stride = 0;
  AlignedArray<float> w, m, v;

  ParamMatrix() = default;
  // `moments`: false for inference (a third of the memory); ensure_moments() adds them later.
  ParamMatrix(std::uint32_t r, std::uint32_t c, bool moments = true)
      : rows(r),
        cols(c),
        stride(padded(c)),
        w(std::size_t{r} * stride),
        m(moments ? w.size() : 0),
        v(moments ? w.size() : 0) {}
  bool has_moments() const { return m.size() == w.size(); }
  void ensure_moments() {
    if (has_moments()) return;
    m = AlignedArray<float>(w.size());
    v = AlignedArray<float>(w.size());
  }
  float* row(std::size_t i) { return w.data() + i * stride; }
  const float* row(std::size_t i) const { return w.data() + i * stride; }
  // Uniform in +-scale (Glorot-style scale chosen by the caller), deterministic for `seed`.
  void init_uniform(float scale, std::uint64_t seed);
};

// A bias vector with its Adam moments.
struct ParamVector {
  AlignedArray<float> w, m, v;
  ParamVector() = default;
  explicit ParamVector(std::size_t n, bool moments = true)
      : w(n), m(moments ? n : 0), v(moments ? n : 0) {}
  std::size_t size() const { return w.size(); }
  bool has_moments() const { return m.size() == w.size(); }
  void ensure_moments() {
    if (has_moments()) return;
    m = AlignedArray<float>(w.size());
    v = AlignedArray<float>(w.size());
  }
};

// A layer's rows as fp32, as LSH tables hash them: row(i) gives row i's cols floats, in place
// when the rows are stored as fp32, else expanded into a per-thread buffer (valid until the next
// call on the same thread). The rows must outlive every use, background rebuilds included.
struct RowsF32 {
  std::uint32_t rows = 0, cols = 0;
  std::function<const float*(std::size_t)> row;
};

inline RowsF32 rows_f32(const ParamMatrix& m) {
  return {m.rows, m.cols,
          [base = m.w.data(), stride = m.stride](std::size_t i) { return base + i * stride; }};
}

inline void ParamMatrix::init_uniform(float scale, std::uint64_t seed) {
  for (std::uint32_t r = 0; r < rows; ++r) {
    Rng rng(derive_seed(seed, r));
    float* p = row(r);
    for (std::uint32_t c = 0; c < cols; ++c) p[c] = scale * (2 * rng.uniformf() - 1);
  }
}

}  // namespace glide::engine
