// 64-byte aligned arrays for weights and other hot data; large ones ask for huge pages.
#pragma once
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace glide {

// Allocates `bytes` aligned to 64 bytes (2 MB and madvise(MADV_HUGEPAGE) when large: fresh pages
// of their own, zeroed by the kernel as they are first touched). The memory reads as zero.
// Throws std::bad_alloc on failure. aligned_free_bytes must be given the same `bytes`.
void* aligned_alloc_bytes(std::size_t bytes);
void aligned_free_bytes(void* p, std::size_t bytes) noexcept;

// True when the last large allocation was granted transparent huge pages advice.
bool huge_pages_advised();

// Hands the heap's free pages back to the system (glibc keeps freed blocks of every size resident
// for reuse). For after a phase that freed much in small blocks, before arrays of fresh pages
// (above) that could not reuse them. Does nothing on other C libraries.
void release_free_heap();

// A fixed-size, zero-initialized, 64-byte aligned array of trivially copyable T.
template <class T>
class AlignedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  AlignedArray() = default;
  explicit AlignedArray(std::size_t n) : size_(n) {
    if (n) data_ = static_cast<T*>(aligned_alloc_bytes(n * sizeof(T)));
  }
  // A copy of `values`.
  explicit AlignedArray(std::span<const T> values) : AlignedArray(values.size()) {
    if (size_) std::memcpy(data_, values.data(), size_ * sizeof(T));
  }
  AlignedArray(const AlignedArray& o) : AlignedArray(o.size_) {
    if (size_) std::memcpy(data_, o.data_, size_ * sizeof(T));
  }
  AlignedArray(AlignedArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedArray& operator=(AlignedArray o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~AlignedArray() { aligned_free_bytes(data_, size_ * sizeof(T)); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  std::span<T> span() { return {data_, size_}; }
  std::span<const T> span() const { return {data_, size_}; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace glide
