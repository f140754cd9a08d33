// Densification of one-permutation hashes (Shrivastava, "Optimal densification for fast and
// accurate minwise hashing", 2017): a bin that no coordinate of the input landed in borrows the
// value of a nonempty bin chosen by a random probe sequence that depends only on the empty bin's
// index, so two similar inputs borrow from the same bins and still collide.
#pragma once
#include <cstddef>
#include <cstdint>

namespace glide::hashing {

// out[b] = in[b] for nonempty bins (in[b] != empty); otherwise in[j] of the first nonempty j in
// the probe sequence of b (seeded by `seed`). All bins empty: all 0.
void densify(const std::uint32_t* in, std::uint32_t* out, std::size_t num_bins, std::uint32_t empty,
             std::uint64_t seed);

}  // namespace glide::hashing
