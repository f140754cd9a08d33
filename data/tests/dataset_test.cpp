#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/error.h"
#include "data/dataset.h"

using namespace glide;
using namespace glide::data;

TEST_CASE("dataset add, subset, append and validate") {
  Dataset d;
  d.num_features = 10;
  d.num_labels = 5;
  const std::uint32_t ids0[] = {1, 4}, lab0[] = {2};
  const float v0[] = {0.5f, 1.5f};
  const std::uint32_t ids1[] = {9}, lab1[] = {0, 4};
  const float v1[] = {2.0f};
  d.add_point(ids0, v0, lab0);
  d.add_point(ids1, v1, lab1);
  d.add_point({}, {}, {});
  CHECK(d.num_points() == 3);
  CHECK(d.features(1).ids[0] == 9);
  CHECK(d.labels(1).size() == 2);
  CHECK(d.labels(2).empty());
  d.validate();
  const std::size_t pick[] = {1, 0};
  Dataset s = d.subset(pick);
  CHECK(s.num_points() == 2);
  CHECK(s.features(1).values[1] == 1.5f);
  Dataset a = s;
  a.append(d);
  CHECK(a.num_points() == 5);
  CHECK(a.labels(3)[1] == 4);
  a.validate();
  d.label_ids[0] = 7;
  CHECK_THROWS_WITH_AS(d.validate("x"), "x: point 0: label id 7 >= number of labels 5", Error);
}

namespace {
// The reference: each id at its first place, found by brute force.
std::vector<std::uint32_t> first_occurrences(const std::vector<std::uint32_t>& ids) {
  std::vector<std::uint32_t> out;
  for (auto id : ids)
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}
}  // namespace

TEST_CASE("keep_first_occurrences keeps each id once, in order (short and long lists)") {
  std::mt19937 rng(7);
  for (std::size_t n : {0, 1, 2, 5, 32, 33, 100, 1000}) {
    for (std::uint32_t range : {2u, 50u, 1000000u}) {
      std::vector<std::uint32_t> ids(n);
      for (auto& id : ids) id = rng() % range;
      const auto want = first_occurrences(ids);
      CHECK(has_repeated_ids(ids) == (want.size() < n));
      const std::size_t kept = keep_first_occurrences(ids);
      ids.resize(kept);
      CHECK(ids == want);
    }
  }
}

TEST_CASE("drop_repeated_labels: each point keeps a label once; the count and first point") {
  std::mt19937 rng(11);
  Dataset d, want;
  d.num_features = want.num_features = 4;
  d.num_labels = want.num_labels = 40;
  // Enough points for several parallel blocks; repeats only from point 20000 on.
  for (std::size_t i = 0; i < 40000; ++i) {
    std::vector<std::uint32_t> labels;
    const std::size_t n = rng() % 6;
    for (std::size_t k = 0; k < n; ++k) labels.push_back(i < 20000 ? (i + k) % 40 : rng() % 8);
    const std::uint32_t f[] = {static_cast<std::uint32_t>(i % 4)};
    const float v[] = {1.0f};
    d.add_point(f, v, labels);
    want.add_point(f, v, first_occurrences(labels));
  }
  std::size_t first_point = 0, first_want = 0;
  for (std::size_t i = 0; i < d.num_points() && !first_want; ++i)
    if (d.labels(i).size() != want.labels(i).size()) first_want = i;
  const std::size_t listed = d.label_ids.size();
  const std::uint64_t removed = d.drop_repeated_labels(&first_point);
  CHECK(removed > 0);
  CHECK(removed == listed - want.label_ids.size());
  CHECK(first_point == first_want);
  CHECK(d == want);
  d.validate();
  CHECK(d.drop_repeated_labels() == 0);
  CHECK(d == want);
  Dataset empty;
  CHECK(empty.drop_repeated_labels() == 0);
}
