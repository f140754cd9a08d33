// The traditional baseline: an exact-match result cache (the input's feature ids and values are
// the key, the top-k answer the value), least recently used entries evicted to stay within a
// byte budget. It only helps when the very same input recurs.
#pragma once
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "engine/evaluator.h"

namespace glide::cache {

class LruCache {
 public:
  explicit LruCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  // True (and the answer in `out`) when this exact input was stored with the same k.
  bool get(const data::SparseView& x, std::uint32_t k, engine::Prediction& out);
  void put(const data::SparseView& x, std::uint32_t k, const engine::Prediction& p);
  std::size_t bytes() const { return bytes_; }
  std::size_t entries() const { return map_.size(); }
  // What one entry of this input and answer costs (key, value and bookkeeping).
  static std::size_t entry_bytes(const data::SparseView& x, const engine::Prediction& p);

 private:
  struct Entry {
    std::uint64_t hash;
    std::uint32_t k;
    std::vector<std::uint32_t> ids;
    std::vector<float> values;
    engine::Prediction answer;
    std::size_t bytes;
  };
  using List = std::list<Entry>;
  static std::uint64_t hash(const data::SparseView& x, std::uint32_t k);
  List::iterator find(const data::SparseView& x, std::uint32_t k, std::uint64_t h);

  std::size_t max_bytes_, bytes_ = 0;
  List lru_;  // most recent first
  std::unordered_multimap<std::uint64_t, List::iterator> map_;
};

}  // namespace glide::cache
