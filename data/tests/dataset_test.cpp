#include <doctest/doctest.h>

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
