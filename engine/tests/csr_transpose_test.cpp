// transpose_rows (engine/csr_transpose.h) against a serial reference: each column's entries in
// ascending row order, each row reported placed once after its last entry, on shapes from empty
// to one heavy row and with the blocks' counts capped, at 1 and 2 threads.
#include <doctest/doctest.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "engine/csr_transpose.h"

using namespace glide::engine;

namespace {

using Rows = std::vector<std::vector<std::uint32_t>>;  // each row's columns, in its own order

struct Transposed {
  std::vector<std::uint64_t> offsets;
  std::vector<std::pair<std::size_t, std::size_t>> entries;  // (row, place in row), column-major
};

Transposed reference(const Rows& rows, std::size_t columns) {
  std::vector<std::tuple<std::uint32_t, std::size_t, std::size_t>> all;  // (column, row, k)
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t k = 0; k < rows[i].size(); ++k) all.emplace_back(rows[i][k], i, k);
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  Transposed t;
  t.offsets.assign(columns + 1, 0);
  for (const auto& [c, i, k] : all) {
    ++t.offsets[c + 1];
    t.entries.emplace_back(i, k);
  }
  for (std::size_t c = 0; c < columns; ++c) t.offsets[c + 1] += t.offsets[c];
  return t;
}

Transposed transposed(const Rows& rows, std::size_t columns, int threads,
                      std::size_t count_bytes = kTransposeCountBytes) {
  std::size_t entries = 0;
  for (const auto& r : rows) entries += r.size();
  Transposed t;
  // Unset places stay (-1, -1), so a place written twice or never shows.
  t.entries.assign(entries, {std::size_t(-1), std::size_t(-1)});
  std::vector<int> writes(entries, 0);
  std::atomic<bool> outside{false}, placed_late{false}, reported_early{false};
  // Per row (each row is placed by one thread): entries placed, and row_placed calls.
  std::vector<std::size_t> row_entries(rows.size(), 0), row_reports(rows.size(), 0);
  tbb::task_arena(threads).execute([&] {
    t.offsets = transpose_rows(
        rows.size(), columns, [&](std::size_t i) { return rows[i].size(); },
        [&](std::size_t i, std::size_t k) { return rows[i][k]; },
        [&](std::size_t i, std::size_t k, std::uint64_t at) {
          if (at >= entries) {
            outside = true;
            return;
          }
          t.entries[at] = {i, k};
          ++writes[at];  // each `at` is placed once, so this is not a race
          placed_late = placed_late || row_reports[i] > 0;
          ++row_entries[i];
        },
        [&](std::size_t i) {
          reported_early = reported_early || row_entries[i] != rows[i].size();
          ++row_reports[i];
        },
        count_bytes);
  });
  CHECK(!outside);
  CHECK(!placed_late);
  CHECK(!reported_early);
  CHECK(std::all_of(row_reports.begin(), row_reports.end(), [](std::size_t n) { return n == 1; }));
  CHECK(std::all_of(writes.begin(), writes.end(), [](int n) { return n == 1; }));
  return t;
}

Rows random_rows(std::size_t rows, std::size_t columns, std::size_t max_per_row, unsigned seed) {
  std::mt19937 rng(seed);
  Rows out(rows);
  for (auto& r : out) {
    const std::size_t n = rng() % (max_per_row + 1);
    for (std::size_t k = 0; k < n; ++k) r.push_back(static_cast<std::uint32_t>(rng() % columns));
  }
  return out;
}

void check_all_threads(const Rows& rows, std::size_t columns,
                       std::size_t count_bytes = kTransposeCountBytes) {
  const Transposed want = reference(rows, columns);
  for (const int threads : {1, 2}) {
    CAPTURE(threads);
    const Transposed got = transposed(rows, columns, threads, count_bytes);
    CHECK(got.offsets == want.offsets);
    CHECK(got.entries == want.entries);
  }
}

}  // namespace

TEST_CASE("the transpose matches a serial stable sort by column") {
  SUBCASE("many rows of a few entries, repeated columns within a row") {
    check_all_threads(random_rows(20000, 300, 6, 1), 300);
  }
  SUBCASE("more columns than entries, many empty") {
    check_all_threads(random_rows(500, 100000, 3, 2), 100000);
  }
  SUBCASE("one heavy row among light ones") {
    Rows rows = random_rows(3000, 50, 2, 3);
    rows[1234] = random_rows(1, 50, 60000, 4)[0];
    check_all_threads(rows, 50);
  }
  SUBCASE("a single row") {
    check_all_threads(random_rows(1, 17, 40, 5), 17);
  }
  SUBCASE("the blocks' counts capped: three blocks, then one") {
    const Rows rows = random_rows(20000, 300, 6, 6);
    check_all_threads(rows, 300, 3 * 300 * 8);
    check_all_threads(rows, 300, 300 * 8 - 1);
  }
  SUBCASE("no entries") {
    check_all_threads(Rows(10), 4);
    check_all_threads(Rows{}, 3);
  }
}
