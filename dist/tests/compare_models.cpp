// glide_compare_models A B TOLERANCE [WIDE_TOLERANCE]: loads two models (one file or a sharded
// model, merged) and prints the largest absolute difference of their parameters, layer by layer;
// exits 1 when a shape differs or a difference exceeds TOLERANCE (WIDE_TOLERANCE for the wide
// layer, TOLERANCE when not given). The wide layer trains with Adagrad, whose first steps divide
// each gradient by its own size: a gradient near 0 summed in another order can step a whole lr
// the other way, so its weights agree less closely than the rest. The sharded-training tests
// compare a run under mpirun with the same run in one process.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "engine/checkpoint.h"

namespace {

using glide::engine::Network;

double max_diff(const float* a, const float* b, std::size_t n) {
  double d = 0;
  for (std::size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: glide_compare_models A B TOLERANCE [WIDE_TOLERANCE]\n");
    return 2;
  }
  try {
    const auto a = glide::engine::load_model(argv[1], true);
    const auto b = glide::engine::load_model(argv[2], true);
    const double tolerance = std::atof(argv[3]);
    const double wide_tolerance = argc == 5 ? std::atof(argv[4]) : tolerance;
    const Network &x = *a.net, &y = *b.net;
    bool ok = true;
    const auto check = [&](const std::string& what, bool same_shape, double diff) {
      std::printf("%-14s %s %.3g\n", what.c_str(), same_shape ? "max |diff|" : "SHAPE DIFFERS",
                  diff);
      ok = ok && same_shape && diff <= (what == "wide" ? wide_tolerance : tolerance);
    };
    if (x.config().num_labels != y.config().num_labels || x.config().hidden != y.config().hidden) {
      std::printf("networks differ in shape\n");
      return 1;
    }
    check("input", x.input.w.size() == y.input.w.size(),
          max_diff(x.input.w.data(), y.input.w.data(), x.input.w.size()));
    check("input_bias", true,
          max_diff(x.input_bias.w.data(), y.input_bias.w.data(), x.input_bias.size()));
    for (std::size_t l = 0; l < x.hidden.size(); ++l)
      check("hidden" + std::to_string(l + 1), true,
            max_diff(x.hidden[l].w.data(), y.hidden[l].w.data(), x.hidden[l].w.size()));
    const auto ox = x.output->to_f32(), oy = y.output->to_f32();
    check("output", ox.w.size() == oy.w.size(), max_diff(ox.w.data(), oy.w.data(), ox.w.size()));
    check("output_bias", true,
          max_diff(x.output_bias.w.data(), y.output_bias.w.data(), x.output_bias.size()));
    check("wide",
          x.wide.offsets() == y.wide.offsets() &&
              std::ranges::equal(x.wide.labels(), y.wide.labels()),
          x.wide.weights().size() == y.wide.weights().size()
              ? max_diff(x.wide.weights().data(), y.wide.weights().data(), x.wide.weights().size())
              : 1e30);
    check("adam step", x.step == y.step, 0);
    check("samples", a.state.samples == b.state.samples, 0);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "glide_compare_models: %s\n", e.what());
    return 1;
  }
}
