// Signed random projections (SimHash): bit b of x is sign(<x, r_b>), so two vectors agree on a bit
// with probability 1 - angle/pi. The projection vectors r_b are sparse (+-1 w.p. 1/ratio each,
// 0 otherwise; Achlioptas / Li et al. "very sparse random projections"), which keeps that
// collision rate close to the dense one while a sparse input touches few coefficients.
#pragma once
#include <cstdint>

#include "common/aligned.h"
#include "hashing/hash_family.h"
#include "hashing/hash_kernels.h"

namespace glide::hashing {

class SimHash final : public HashFamily {
 public:
  explicit SimHash(const HashConfig& config);
  void hash_dense(const float* x, std::uint32_t* buckets_out) const override;
  void hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const override;

  // The projection values of x (K*L of them, padded to a multiple of 16), for tests.
  void project_dense(const float* x, float* out) const;
  std::uint32_t num_bits() const { return num_bits_; }
  std::uint32_t padded_bits() const { return width_; }
  // Coefficient of input coordinate `feature` in projection `bit`: -1, 0 or +1.
  int coefficient(std::uint32_t feature, std::uint32_t bit) const {
    return coef_hash_.coefficient(feature, bit);
  }
  bool has_matrix() const { return !matrix_.empty(); }

 private:
  void bits_to_buckets(const float* projection, std::uint32_t* buckets_out) const;

  std::uint32_t num_bits_ = 0;  // K*L
  std::uint32_t width_ = 0;     // num_bits_ rounded up to 16 (one AVX-512 register)
  kernels::ProjectionHash coef_hash_;
  // dim x width coefficients as floats, materialized from coef_hash_ when small (hidden layers):
  // a dense 128-d input then costs 128 rows of fused multiply-adds, which beats gathering the
  // ~1/ratio nonzeros of each projection. Wide inputs (the sparse input layer) recompute
  // coefficients from the hash for just their nonzero features instead.
  AlignedArray<float> matrix_;
};

}  // namespace glide::hashing
