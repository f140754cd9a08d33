#include "engine/validation.h"

#include <algorithm>
#include <iterator>

#include "common/error.h"

namespace glide::engine {

BestBy parse_best_by(const std::string& name, const std::string& flag) {
  const auto* it = std::find(std::begin(kBestByNames), std::end(kBestByNames), name);
  if (it == std::end(kBestByNames))
    fail(flag + " must be p1+p5, p1, p5 or psp5, got '" + name + "'");
  return static_cast<BestBy>(it - std::begin(kBestByNames));
}

const char* name(BestBy b) {
  return kBestByNames[static_cast<int>(b)];
}

double best_score(const EvalResult& e, BestBy by) {
  switch (by) {
    case BestBy::kP1:
      return e.precision[0];
    case BestBy::kP5:
      return e.precision[4];
    case BestBy::kPsp5:
      if (!e.has_psp) fail("best by psp5 needs the labels' propensities (the training set's)");
      return e.psp[4];
    case BestBy::kP1P5:
      break;
  }
  return e.precision[0] + e.precision[4];
}

std::vector<std::size_t> evenly_spaced(std::size_t n, std::size_t count) {
  if (count > n)
    fail("cannot take " + std::to_string(count) + " of " + std::to_string(n) + " points");
  std::vector<std::size_t> points(count);
  if (count == 0) return points;
  const std::size_t stride = n / count;
  for (std::size_t k = 0; k < count; ++k) points[k] = k * stride + stride - 1;
  return points;
}

ValidationSplit split_validation(const data::Dataset& all, std::size_t points,
                                 const std::string& flag) {
  const std::size_t n = all.num_points();
  if (points == 0 || 2 * points > n)
    fail(flag + " " + std::to_string(points) + ": must leave at least half of the " +
         std::to_string(n) + " training points to train on, and hold out at least one");
  const std::vector<std::size_t> held = evenly_spaced(n, points);
  std::vector<std::size_t> rest;
  rest.reserve(n - points);
  for (std::size_t i = 0, h = 0; i < n; ++i) {
    if (h < held.size() && held[h] == i) {
      ++h;
      continue;
    }
    rest.push_back(i);
  }
  return {all.subset(rest), all.subset(held)};
}

}  // namespace glide::engine
