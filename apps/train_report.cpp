#include "apps/train_report.h"

#include <cstdio>
#include <iterator>

namespace glide::cli {

std::string wide_start_line(const engine::WideStartChoice& c) {
  const auto number_text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return std::string(buf);
  };
  std::string line = "wide layer: norm power " + number_text(c.norm_power) + ", share rounds " +
                     std::to_string(c.share_rounds) + ", contrast " + number_text(c.contrast);
  if (!c.rounds_not_tried.empty()) line += " (share rounds not tried: " + c.rounds_not_tried + ")";
  if (c.held_out == 0) return line + " (too few points to hold any out)";
  line += ", chosen on " + std::to_string(c.held_out) +
          " held-out training points (P@1 / P@5 at rounds,contrast,power:";
  for (std::size_t r = 0; r < std::size(engine::kShareRounds); ++r)
    for (std::size_t k = 0; k < std::size(engine::kContrasts); ++k)
      for (std::size_t p = 0; p < std::size(engine::kNormPowers); ++p)
        if (c.tried[r][k][p])
          line += " " + std::to_string(engine::kShareRounds[r]) + "," +
                  number_text(engine::kContrasts[k]) + "," + number_text(engine::kNormPowers[p]) +
                  " " + number_text(c.p_at_1[r][k][p]) + " / " + number_text(c.p_at_5[r][k][p]);
  return line + ")";
}

void print_eval(const char* what, const engine::EvalResult& e) {
  std::printf("%s: P@1 %.4f  P@3 %.4f  P@5 %.4f  nDCG@3 %.4f  nDCG@5 %.4f", what, e.precision[0],
              e.precision[2], e.precision[4], e.ndcg[2], e.ndcg[4]);
  if (e.has_psp) std::printf("  PSP@1 %.4f  PSP@3 %.4f  PSP@5 %.4f", e.psp[0], e.psp[2], e.psp[4]);
  std::printf("  (%zu points, %.3f ms/point)\n", e.points, 1e3 * e.seconds_per_point());
}

std::string training_line(const engine::Config& c) {
  std::string line = "training " + std::to_string(c.net.num_features) + " features";
  for (std::size_t l = 0; l < c.net.hidden.size(); ++l)
    line += " -> " + std::to_string(c.net.hidden[l]) + (c.net.hidden_sampled(l) ? " (lsh)" : "");
  char wide[96] = "";
  if (c.net.wide == engine::WideMode::kTail)
    std::snprintf(wide, sizeof wide, ", wide tail (labels of at most %u training points)",
                  c.net.wide_tail_points);
  else if (engine::has_wide(c.net))
    std::snprintf(wide, sizeof wide, ", wide layer");
  char buf[256];
  std::snprintf(buf, sizeof buf, " -> %u labels, %s sampling%s, %g epoch(s), lr %g",
                c.net.num_labels, engine::name(c.net.sampling), wide, c.train.epochs,
                engine::with_network_defaults(c.train, c.net.wide).lr);
  return line + buf;
}

void print_training_summary(const engine::FitProgress& done, std::uint64_t samples,
                            const engine::PhaseTimes& t, const Setup& setup) {
  std::string line = "trained " + std::to_string(samples) + " samples";
  char buf[256];
  if (samples) {
    std::snprintf(buf, sizeof buf, " in %.1f s (%.0f samples/s)", done.seconds,
                  done.samples_per_second);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, " after %.1f s of setup (data %.1f s)", setup.seconds,
                setup.data_seconds);
  line += buf;
  if (done.eval_seconds > 0) {
    std::snprintf(buf, sizeof buf, "; evaluation %.1f s", done.eval_seconds);
    line += buf;
  }
  if (samples && t.total() > 0) {
    std::snprintf(buf, sizeof buf,
                  "; time split: select %.1f%%, forward %.1f%%, loss %.1f%%, backward+update "
                  "%.1f%%, table refresh %.1f%%",
                  100 * t.select / t.total(), 100 * t.forward / t.total(), 100 * t.loss / t.total(),
                  100 * t.backward / t.total(), 100 * t.refresh / t.total());
    line += buf;
  }
  std::printf("%s\n", line.c_str());
}

void print_validation(const engine::FitProgress& done, const engine::EvalResult& best,
                      std::size_t points, const engine::FitOptions& fo, bool kept) {
  std::printf("validation: best %s %.4f (P@1 %.4f, P@5 %.4f", engine::name(fo.best_by),
              done.best_score, best.precision[0], best.precision[4]);
  if (best.has_psp) std::printf(", PSP@5 %.4f", best.psp[4]);
  std::printf(") at epoch %.2f of %.2f, on %zu points; %s\n", done.best_epoch, done.epoch, points,
              !kept                               ? "not kept (its save failed)"
              : done.best_samples == done.samples ? "the last model is the best"
                                                  : "that model is the one saved");
  if (fo.patience && done.since_best >= fo.patience)
    std::printf("stopped early: %u validations in a row without a new best (--patience)\n",
                done.since_best);
}

}  // namespace glide::cli
