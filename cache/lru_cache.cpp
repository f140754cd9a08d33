#include "cache/lru_cache.h"

#include <algorithm>
#include <cstring>

namespace glide::cache {

std::uint64_t LruCache::hash(const data::SparseView& x, std::uint32_t k) {
  std::uint64_t h = 1469598103934665603ull ^ k;  // FNV-1a over the bytes
  auto mix = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(x.ids.data(), x.ids.size() * sizeof(std::uint32_t));
  mix(x.values.data(), x.values.size() * sizeof(float));
  return h;
}

std::size_t LruCache::entry_bytes(const data::SparseView& x, const engine::Prediction& p) {
  // ids + values + labels + scores, plus list node, hash node and vector headers (~128 B).
  return x.ids.size() * 8 + p.labels.size() * 8 + 128;
}

LruCache::List::iterator LruCache::find(const data::SparseView& x, std::uint32_t k,
                                        std::uint64_t h) {
  const auto [lo, hi] = map_.equal_range(h);
  for (auto it = lo; it != hi; ++it) {
    const Entry& e = *it->second;
    if (e.k == k && e.ids.size() == x.ids.size() &&
        std::equal(e.ids.begin(), e.ids.end(), x.ids.begin()) &&
        std::memcmp(e.values.data(), x.values.data(), e.values.size() * sizeof(float)) == 0)
      return it->second;
  }
  return lru_.end();
}

bool LruCache::get(const data::SparseView& x, std::uint32_t k, engine::Prediction& out) {
  const auto it = find(x, k, hash(x, k));
  if (it == lru_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it);
  out = it->answer;
  return true;
}

void LruCache::put(const data::SparseView& x, std::uint32_t k, const engine::Prediction& p) {
  const std::uint64_t h = hash(x, k);
  if (find(x, k, h) != lru_.end()) return;
  const std::size_t b = entry_bytes(x, p);
  if (b > max_bytes_) return;
  while (bytes_ + b > max_bytes_ && !lru_.empty()) {
    const Entry& last = lru_.back();
    const auto [lo, hi] = map_.equal_range(last.hash);
    for (auto it = lo; it != hi; ++it)
      if (it->second == std::prev(lru_.end())) {
        map_.erase(it);
        break;
      }
    bytes_ -= last.bytes;
    lru_.pop_back();
  }
  lru_.push_front({h, k, std::vector(x.ids.begin(), x.ids.end()),
                   std::vector(x.values.begin(), x.values.end()), p, b});
  map_.emplace(h, lru_.begin());
  bytes_ += b;
}

}  // namespace glide::cache
