// The transpose of a sparse matrix held row by row (CSR), in parallel, the same whatever the
// thread count.
#pragma once
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace glide::engine {

// Where each entry goes in the matrix's column-major form. Row i has row_size(i) entries; entry k
// of it is in column column(i, k) < columns. Calls place(i, k, at) once per entry with its index
// `at` in the column-major arrays, where each column's entries are contiguous and in ascending row
// order (rows keep their entries' order within a column). Returns the column offsets
// (columns + 1, from 0 to the entry count). place runs on several threads at once, never twice
// for one `at`, so it may write the arrays without locks. row_placed(i) is called once row i's
// entries are all placed, after which row i is not read again (the caller may free it).
//
// A counting sort over blocks of rows: each block counts its columns, the counts become each
// block's first place per column, then each block places its entries. The blocks' counts take
// blocks x columns x 8 bytes, kept under count_bytes (fewer blocks when columns are many; one
// block, a serial sort, when even two would not fit).
inline constexpr std::size_t kTransposeCountBytes = std::size_t{64} << 20;

struct NoRowPlaced {
  void operator()(std::size_t) const {}
};

template <class RowSize, class Column, class Place, class RowPlaced = NoRowPlaced>
std::vector<std::uint64_t> transpose_rows(std::size_t rows, std::size_t columns, RowSize row_size,
                                          Column column, Place place, RowPlaced row_placed = {},
                                          std::size_t count_bytes = kTransposeCountBytes) {
  // Blocks of about equal entries: four per thread, so uneven rows still spread over threads.
  std::vector<std::uint64_t> row_start(rows + 1, 0);
  for (std::size_t i = 0; i < rows; ++i) row_start[i + 1] = row_start[i] + row_size(i);
  const std::uint64_t entries = row_start[rows];
  const std::size_t by_memory =
      std::max<std::size_t>(1, count_bytes / (8 * std::max<std::size_t>(columns, 1)));
  const std::size_t blocks = std::max<std::size_t>(
      1,
      std::min({std::size_t(4) * static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()),
                by_memory, rows, static_cast<std::size_t>(entries / 4096 + 1)}));
  std::vector<std::size_t> first_row(blocks + 1, rows);
  for (std::size_t b = 0; b < blocks; ++b)
    first_row[b] = static_cast<std::size_t>(
        std::lower_bound(row_start.begin(), row_start.end(), entries * b / blocks) -
        row_start.begin());
  first_row[0] = 0;

  std::vector<std::vector<std::uint64_t>> next(blocks);  // per block, per column
  tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
    next[b].assign(columns, 0);
    for (std::size_t i = first_row[b]; i < first_row[b + 1]; ++i)
      for (std::size_t k = 0, n = row_size(i); k < n; ++k) ++next[b][column(i, k)];
  });
  std::vector<std::uint64_t> offsets(columns + 1, 0);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, columns, 4096), [&](const auto& r) {
    for (std::size_t c = r.begin(); c < r.end(); ++c)
      for (std::size_t b = 0; b < blocks; ++b) offsets[c + 1] += next[b][c];
  });
  for (std::size_t c = 0; c < columns; ++c) offsets[c + 1] += offsets[c];
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, columns, 4096), [&](const auto& r) {
    for (std::size_t c = r.begin(); c < r.end(); ++c) {
      std::uint64_t at = offsets[c];
      for (std::size_t b = 0; b < blocks; ++b) at += std::exchange(next[b][c], at);
    }
  });
  tbb::parallel_for(std::size_t{0}, blocks, [&](std::size_t b) {
    std::vector<std::uint64_t>& at = next[b];
    for (std::size_t i = first_row[b]; i < first_row[b + 1]; ++i) {
      for (std::size_t k = 0, n = row_size(i); k < n; ++k) place(i, k, at[column(i, k)]++);
      row_placed(i);
    }
  });
  return offsets;
}

}  // namespace glide::engine
