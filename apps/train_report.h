// What `glide train` prints about a run: the wide layer's start and the training line before it,
// evaluations, the closing summary and the validation's outcome.
#pragma once
#include <cstdint>
#include <string>

#include "engine/config.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/trainer.h"
#include "engine/wide_layer.h"

namespace glide::cli {

// What the wide layer's start was chosen from: each (share rounds, norm power) tried, its
// held-out P@1 and P@5.
std::string wide_start_line(const engine::WideStartChoice& c);

// "WHAT: P@1 ... P@5 ... (N points, X ms/point)", with PSP@k where the evaluation has them.
void print_eval(const char* what, const engine::EvalResult& e);

// One line on what is about to train: "training 135909 features -> 128 -> 670091 labels, lsh
// sampling, wide layer, 5 epoch(s), lr 0.0003" (--verbose prints the whole config).
std::string training_line(const engine::Config& c);

// What came before the first batch: reading the training data, then the model (network, sampler
// tables, the wide layer's start).
struct Setup {
  double data_seconds = 0;
  double seconds = 0;  // the whole of it, the data's reading included
};

// "trained N samples in X s (Y samples/s) after S s of setup (data D s)" over training time
// alone, the evaluations' time beside it, and where the training time went (no split when nothing
// was trained, e.g. resuming a finished run).
void print_training_summary(const engine::FitProgress& done, std::uint64_t samples,
                            const engine::PhaseTimes& t, const Setup& setup);

// "validation: best p1+p5 0.8123 (P@1 0.6100, P@5 0.2023) at epoch 1.25 of 3.00, on 2000
// points; ..." (whether that model is the one saved), and, where patience ended the run, that it
// did.
void print_validation(const engine::FitProgress& done, const engine::EvalResult& best,
                      std::size_t points, const engine::FitOptions& fo, bool kept);

}  // namespace glide::cli
