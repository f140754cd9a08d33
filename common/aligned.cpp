#include "common/aligned.h"

#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace glide {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::size_t kHugeThreshold = std::size_t{4} << 20;
std::atomic<bool> g_huge_advised{false};
}  // namespace

void* aligned_alloc_bytes(std::size_t bytes) {
  if (bytes >= kHugeThreshold) {
    // Fresh anonymous pages read as zero: nothing is written here, and each page is zeroed by the
    // kernel where it is first touched (by the thread that fills it, a file read, or never: Adam
    // moments of rows a short run does not train). A whole pass over the memory at allocation
    // cost a loaded model a write of every byte before the read wrote it again.
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* raw = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    // Aligned to 2 MB (the head and tail beyond it returned), so that huge pages can back it.
    const auto at = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t start = (at + kHugePage - 1) / kHugePage * kHugePage;
    if (start > at) munmap(raw, start - at);
    const std::size_t tail = at + rounded + kHugePage - (start + rounded);
    if (tail) munmap(reinterpret_cast<void*>(start + rounded), tail);
    void* p = reinterpret_cast<void*>(start);
    // Transparent huge pages are often in madvise mode: random row gathers run ~1.7x faster on
    // 2 MB pages. Refusal is harmless, the memory then uses 4 KB pages.
    g_huge_advised.store(madvise(p, rounded, MADV_HUGEPAGE) == 0, std::memory_order_relaxed);
    return p;
  }
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return p;
}

void aligned_free_bytes(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  if (bytes >= kHugeThreshold)
    munmap(p, (bytes + kHugePage - 1) / kHugePage * kHugePage);
  else
    std::free(p);
}

bool huge_pages_advised() {
  return g_huge_advised.load(std::memory_order_relaxed);
}

void release_free_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace glide
