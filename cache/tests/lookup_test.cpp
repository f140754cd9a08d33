// The pieces of a centroid lookup on their own: the scalar integer dot kernel (every other level's
// table is tested against it in tests/kernel_levels_test.cpp), the top-k selection, the
// ratio-test confidence, early admission of hot labels, and several rows per label (far inputs,
// and inputs another label's row is nearer to).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cache/learned_cache.h"
#include "cache/lookup_kernels.h"
#include "common/cpu.h"

using namespace glide;
using namespace glide::cache;

namespace {

// A compact centroid cache over `hot` labels with random unit rows of width `dim`.
CacheModel random_cache(std::uint32_t dim, std::uint32_t hot, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n;
  std::vector<std::uint32_t> labels(hot);
  for (std::uint32_t c = 0; c < hot; ++c) labels[c] = 1000 + 3 * c;
  std::vector<float> w(std::size_t{hot + 1} * dim), b(hot + 1, 0.0f);
  for (auto& v : w) v = n(g);
  for (std::uint32_t c = 0; c <= hot; ++c)
    normalise(w.data() + std::size_t{c} * dim, dim, w.data() + std::size_t{c} * dim);
  CacheModel m = CacheModel::from_parameters(0, dim, labels, w, b, CacheForm::kCentroid, 0);
  m.compact();
  return m;
}

}  // namespace

TEST_CASE("scalar lookup dots: hand-worked values and the largest sum the format allows") {
  const LookupKernels& k = lookup_scalar_kernels();
  std::vector<std::int8_t> a(2 * 32, 0);
  std::vector<std::int16_t> x(16, 0);
  a[0] = 3, a[5] = -2, a[32] = 127, a[32 + 15] = -1;  // rows of stride 32
  x[0] = 100, x[5] = 7, x[15] = -1023;
  std::vector<std::int32_t> out(2);
  k.dots(a.data(), 2, 32, x.data(), 16, out.data());
  CHECK(out[0] == 300 - 14);
  CHECK(out[1] == 12700 + 1023);
  for (const std::size_t n : {16u, 1024u}) {
    std::vector<std::int8_t> w(n, -127);
    std::vector<std::int16_t> xe(n, -1023);
    std::int32_t e = 0;
    k.dots(w.data(), 1, n, xe.data(), n, &e);
    CHECK(e == 127 * 1023 * static_cast<std::int32_t>(n));
  }
}

TEST_CASE("lookup: the same answer on every ISA; top k in order, equal to the full ordering") {
  const CacheModel m = random_cache(128, 300, 3);
  std::mt19937 g(11);
  std::normal_distribution<float> n;
  std::vector<float> act(128), scratch;
  const Isa before = active_isa();
  for (int trial = 0; trial < 20; ++trial) {
    for (auto& v : act) v = std::max(0.0f, n(g));
    engine::Prediction top5, all, scalar;
    bool hot = false;
    const float conf = m.lookup(act.data(), 5, top5, &hot, scratch);
    REQUIRE(hot);
    m.lookup(act.data(), 300, all, &hot, scratch);
    REQUIRE(all.labels.size() == 300);
    CHECK(std::is_sorted(all.scores.rbegin(), all.scores.rend()));
    CHECK(std::vector<std::uint32_t>(all.labels.begin(), all.labels.begin() + 5) == top5.labels);
    CHECK(top5.scores[0] == conf);
    REQUIRE(set_active_isa(Isa::kScalar));
    const float conf_s = m.lookup(act.data(), 5, scalar, &hot, scratch);
    set_active_isa(before);
    CHECK(conf_s == conf);
    CHECK(scalar.labels == top5.labels);
    CHECK(scalar.scores == top5.scores);
  }
}

TEST_CASE("early admission: a label joins the hot set as soon as it qualifies, up to the cap") {
  CacheOptions o;
  o.hot_labels = 3;
  o.min_count = 1.5;  // a second top-1
  o.hot_refresh_every = 1 << 30;
  CacheTrainer t(0, 16, o);
  std::vector<float> a(16, 0.0f);
  auto add = [&](std::uint32_t label, int at) {
    std::fill(a.begin(), a.end(), 0.0f);
    a[at] = 1;
    t.add(a.data(), label);
  };
  // The first refresh (after 256 counts) is far away: without early admission nothing is hot.
  add(7, 0);
  CHECK(t.current().hot().empty());
  add(7, 0);
  REQUIRE(t.current().hot() == std::vector<std::uint32_t>{7});
  CHECK(t.current().weight_row(0)[0] == doctest::Approx(1));  // learned from that example
  add(8, 1);
  add(8, 1);
  add(9, 2);
  add(9, 2);
  add(10, 3);
  add(10, 3);  // no room: the cap holds
  CHECK(t.current().hot() == std::vector<std::uint32_t>{7, 8, 9});
  CHECK(t.current().weight_row(2)[2] == doctest::Approx(1));
  // A published version finds each admitted label by its own row.
  const auto snap = t.snapshot();
  engine::Prediction p;
  bool hot = false;
  std::vector<float> scratch;
  std::fill(a.begin(), a.end(), 0.0f);
  a[1] = 1;
  CHECK(snap->lookup(a.data(), 1, p, &hot, scratch) > 0.99f);
  CHECK(p.labels == std::vector<std::uint32_t>{8});
  // Off: the same examples leave the hot set empty until a refresh.
  o.admit_early = false;
  CacheTrainer off(0, 16, o);
  for (int i = 0; i < 4; ++i) off.add(a.data(), 8);
  CHECK(off.current().hot().empty());
}

TEST_CASE("several rows per label: far inputs start rows; a lookup lists each label once") {
  CacheOptions o;
  o.hot_labels = 8;
  o.min_count = 0.5;  // hot from its first example
  o.hot_refresh_every = 1 << 30;
  o.rows_per_label = 2;
  o.join_cosine = 0.9f;
  CacheTrainer t(0, 16, o);
  auto unit = [](std::initializer_list<std::pair<int, float>> v) {
    std::vector<float> a(16, 0.0f);
    for (const auto& [i, x] : v) a[i] = x;
    return a;
  };
  t.add(unit({{0, 1}}).data(), 7);
  t.add(unit({{1, 1}}).data(), 7);             // orthogonal: a second row
  t.add(unit({{0, 1}, {2, 0.1f}}).data(), 7);  // near row 0: joins it
  t.add(unit({{3, 1}}).data(), 7);             // far, but the label has its 2 rows
  t.add(unit({{4, 1}}).data(), 9);
  REQUIRE(t.current().hot() == std::vector<std::uint32_t>{7, 7, 9});
  CHECK(t.current().weight_row(1)[1] > 0.99f);  // the second row is that input's
  const auto snap = t.snapshot();
  engine::Prediction p;
  bool hot = false;
  std::vector<float> scratch;
  // Near both rows of label 7 and a little near label 9: 7 once, then 9.
  const auto x = unit({{0, 1}, {1, 1}, {4, 0.2f}});
  snap->lookup(x.data(), 5, p, &hot, scratch);
  CHECK(p.labels == std::vector<std::uint32_t>{7, 9});
  // An input of the second cluster hits label 7 at cosine ~1.
  CHECK(snap->lookup(unit({{1, 1}}).data(), 1, p, &hot, scratch) > 0.99f);
  CHECK(p.labels == std::vector<std::uint32_t>{7});
  // One row per label: the same examples average into one row.
  o.rows_per_label = 1;
  CacheTrainer one(0, 16, o);
  one.add(unit({{0, 1}}).data(), 7);
  one.add(unit({{1, 1}}).data(), 7);
  CHECK(one.current().hot() == std::vector<std::uint32_t>{7});
}

namespace {
std::vector<float> unit16(std::initializer_list<std::pair<int, float>> v) {
  std::vector<float> a(16, 0.0f);
  for (const auto& [i, x] : v) a[i] = x;
  return a;
}
}  // namespace

TEST_CASE("ratio test: 1 on a centroid, 0 when another label is as near, scale-free between") {
  CHECK(ratio_confidence(1.0f, 0.5f) == 1.0f);
  CHECK(ratio_confidence(1.002f, 0.9f) == 1.0f);  // int8 rounding above 1: on the centroid
  CHECK(ratio_confidence(0.9f, 0.8f) == doctest::Approx(0.5f));
  CHECK(ratio_confidence(0.99f, 0.98f) == doctest::Approx(0.5f));  // same ratio, same confidence
  CHECK(ratio_confidence(0.8f, 0.8f) == 0.0f);
  CHECK(ratio_confidence(0.999f, 1.0f) == 0.0f);  // a second label on the input: a coin toss
  CHECK(ratio_confidence(0.6f, 0.0f) == doctest::Approx(0.6f));  // no rival: the cosine

  // In a lookup the rival is the best row of another label; the label's own second row is not.
  std::vector<float> w;
  for (const auto& r : {unit16({{0, 1}}), unit16({{0, 1}, {1, 1}}), unit16({{2, 1}}),
                        unit16({{3, 1}})}) {  // 7, 7, 9, "other"
    std::vector<float> n(16);
    normalise(r.data(), 16, n.data());
    w.insert(w.end(), n.begin(), n.end());
  }
  const std::vector<float> b(4, 0.0f);
  CacheModel m = CacheModel::from_parameters(0, 16, {7, 7, 9}, w, b, CacheForm::kCentroid, 0);
  m.set_confidence(Confidence::kRatio);
  const auto x = unit16({{0, 1}, {2, 0.5f}});
  const float best = 1 / std::sqrt(1.25f), rival = 0.5f / std::sqrt(1.25f);
  engine::Prediction p;
  bool hot = false;
  std::vector<float> scratch;
  CHECK(m.lookup(x.data(), 2, p, &hot, scratch) == doctest::Approx(1 - (1 - best) / (1 - rival)));
  CHECK(p.labels == std::vector<std::uint32_t>{7, 9});
  CHECK(p.scores[0] == doctest::Approx(best));  // scores stay cosines
  m.set_confidence(Confidence::kCosine);
  CHECK(m.lookup(x.data(), 2, p, &hot, scratch) == doctest::Approx(best));
  // The compact (int8) version agrees to rounding.
  m.set_confidence(Confidence::kRatio);
  m.compact();
  CHECK(m.lookup(x.data(), 2, p, &hot, scratch) ==
        doctest::Approx(1 - (1 - best) / (1 - rival)).epsilon(0.02));
}

TEST_CASE("an input another label's row is nearer to gets a row of its own, then hits") {
  CacheOptions o;
  o.hot_labels = 8;
  o.min_count = 0.5;
  o.hot_refresh_every = 1 << 30;
  o.rows_per_label = 2;
  o.join_cosine = 0;  // only the nearer-rival rule starts rows
  CacheTrainer t(0, 16, o);
  t.add(unit16({{0, 1}}).data(), 7);
  t.add(unit16({{1, 1}}).data(), 9);
  // Label 7's input nearer to 9's row (cosine 0.89) than to 7's (0.45): a row of its own.
  const auto odd = unit16({{0, 1}, {1, 2}});
  t.add(odd.data(), 7);
  REQUIRE(t.current().hot() == std::vector<std::uint32_t>{7, 9, 7});
  // Nearer to 7's first row than to any other label's: it joins that row, no new one.
  t.add(unit16({{0, 1}, {1, 0.5f}}).data(), 7);
  CHECK(t.current().hot().size() == 3);
  const auto snap = t.snapshot();
  engine::Prediction p;
  bool hot = false;
  std::vector<float> scratch;
  CHECK(snap->lookup(odd.data(), 1, p, &hot, scratch) > 0.99f);  // its own row: certain
  CHECK(p.labels == std::vector<std::uint32_t>{7});
  // One row per label: the odd input averages into 7's row and still looks like 9.
  o.rows_per_label = 1;
  CacheTrainer one(0, 16, o);
  one.add(unit16({{0, 1}}).data(), 7);
  one.add(unit16({{1, 1}}).data(), 9);
  one.add(odd.data(), 7);
  CHECK(one.current().hot() == std::vector<std::uint32_t>{7, 9});
  one.snapshot()->lookup(odd.data(), 1, p, &hot, scratch);
  CHECK(p.labels == std::vector<std::uint32_t>{9});
}
