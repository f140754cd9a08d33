#include "hashing/simhash.h"

#include "common/rng.h"

namespace glide::hashing {

namespace {
// Largest coefficient matrix kept (floats): 32 MB, e.g. dim 1024 x 8192 bits.
constexpr std::size_t kMaxMatrixFloats = std::size_t{8} << 20;
}  // namespace

SimHash::SimHash(const HashConfig& config) : HashFamily(config) {
  set_value_bits(1);
  num_bits_ = config.K * config.L;
  width_ = (num_bits_ + 15) / 16 * 16;
  coef_hash_.seed = static_cast<std::uint32_t>(derive_seed(config.seed, 1));
  coef_hash_.nonzero_below =
      static_cast<std::uint32_t>((std::uint64_t{1} << 31) / config.sparse_ratio);
  if (std::size_t{config.dim} * width_ <= kMaxMatrixFloats) {
    matrix_ = AlignedArray<float>(std::size_t{config.dim} * width_);
    for (std::uint32_t i = 0; i < config.dim; ++i) {
      float* row = matrix_.data() + std::size_t{i} * width_;
      for (std::uint32_t b = 0; b < num_bits_; ++b) row[b] = static_cast<float>(coefficient(i, b));
    }
  }
}

void SimHash::project_dense(const float* x, float* out) const {
  if (has_matrix())
    kernels::project_dense(matrix_.data(), width_, x, dim(), out);
  else
    kernels::project_hashed(coef_hash_, width_, nullptr, x, dim(), out);
}

void SimHash::hash_dense(const float* x, std::uint32_t* buckets_out) const {
  float* projection = thread_scratch<float, 0>(width_);
  project_dense(x, projection);
  bits_to_buckets(projection, buckets_out);
}

void SimHash::hash_sparse(data::SparseView x, std::uint32_t* buckets_out) const {
  float* projection = thread_scratch<float, 0>(width_);
  if (has_matrix())
    kernels::project_sparse(matrix_.data(), width_, x.ids.data(), x.values.data(), x.size(),
                            projection);
  else
    kernels::project_hashed(coef_hash_, width_, x.ids.data(), x.values.data(), x.size(),
                            projection);
  bits_to_buckets(projection, buckets_out);
}

void SimHash::bits_to_buckets(const float* projection, std::uint32_t* buckets_out) const {
  std::uint32_t* bits = thread_scratch<std::uint32_t, 1>(num_bits_);
  // >= 0 (not > 0) so that +0 and -0 give the same bit whichever order zeros were summed in.
  for (std::uint32_t b = 0; b < num_bits_; ++b) bits[b] = projection[b] >= 0.0f ? 1u : 0u;
  combine(bits, buckets_out);
}

}  // namespace glide::hashing
