// Runs work on a bounded number of oneTBB worker threads.
#pragma once
#include <tbb/task_arena.h>

namespace glide::data {

// Calls f() inside an arena of `threads` workers (0: every core), so nested parallel loops use
// at most that many threads.
template <class F>
decltype(auto) with_threads(int threads, F&& f) {
  tbb::task_arena arena(threads > 0 ? threads : tbb::task_arena::automatic);
  return arena.execute(std::forward<F>(f));
}

}  // namespace glide::data
