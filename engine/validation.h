// Validation during training: points held out of the training set, scored at every evaluation
// point, so that a run keeps its best model rather than its last one and can stop once more
// training no longer helps (FitOptions::validation, `glide train --valid-points`).
// docs/training.md, "Keeping the best model".
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/evaluator.h"

namespace glide::engine {

// What "best" means: P@1 + P@5 (the default, as the wide layer's check judges), one of them, or
// PSP@5 (rare labels first; needs the labels' propensities).
enum class BestBy { kP1P5, kP1, kP5, kPsp5 };
inline constexpr const char* kBestByNames[] = {"p1+p5", "p1", "p5", "psp5"};
// Fails naming `flag` and the accepted names for anything else.
BestBy parse_best_by(const std::string& name, const std::string& flag);
const char* name(BestBy b);

// The score `by` ranks evaluations with (higher is better). Fails for kPsp5 without PSP.
double best_score(const EvalResult& e, BestBy by);

// `count` of n points spread evenly over them (every (n / count)-th, the last of each stride),
// so that a sorted file gives every part of it; empty for count 0. Fails unless count <= n.
std::vector<std::size_t> evenly_spaced(std::size_t n, std::size_t count);

struct ValidationSplit {
  data::Dataset train;  // the points left to train on, in their order
  data::Dataset valid;
};
// Holds `points` of `all` out for validation (evenly_spaced). Fails, naming `flag`, unless at
// least half the points are left to train on.
ValidationSplit split_validation(const data::Dataset& all, std::size_t points,
                                 const std::string& flag);

}  // namespace glide::engine
