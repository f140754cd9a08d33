// The training loop stepped a batch at a time (FitRun): the batches it visits, and runs stepped
// in lockstep against fit().
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "common/rng.h"
#include "data/shuffle.h"
#include "engine/evaluator.h"
#include "engine/fit.h"
#include "engine/output_matrix.h"
#include "engine/output_sampler.h"
#include "engine/tests/small_problem.h"

using namespace glide;
using namespace glide::engine;

using testing::exact_top5;
using testing::same_predictions;

TEST_CASE("a run visits epoch e in shuffled_order(n, derive_seed(seed, e)), cut at epoch ends") {
  testing::SmallProblem p(1.3);  // 6,000 points, batch 64: 7,800 samples over two epochs
  p.config.net.sampling = OutputSampling::kRandom;
  const data::Dataset& train = p.data.train;
  const std::size_t n = train.num_points();
  Network net(p.config.net);
  Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
  std::vector<std::vector<const std::uint32_t*>> batches;  // each input's feature ids
  FitOptions options;
  options.on_batch = [&](std::span<const data::SparseView> inputs) {
    batches.emplace_back();
    for (const auto& x : inputs) batches.back().push_back(x.ids.data());
  };
  FitRun run(net, trainer, train, p.config.train, options);
  while (!run.done()) run.step();
  CHECK(run.progress().samples == 7800);

  // The expected batches: 64 at a time through each epoch's order, the last of an epoch (and of
  // the run) shorter.
  std::vector<std::vector<const std::uint32_t*>> expected;
  for (std::uint64_t epoch = 0, done = 0; done < 7800; ++epoch) {
    const auto order = data::shuffled_order(n, derive_seed(p.config.train.seed, epoch));
    for (std::size_t pos = 0; pos < n && done < 7800;) {
      const std::size_t take = std::min<std::size_t>({64, n - pos, 7800 - done});
      expected.emplace_back();
      for (std::size_t i = pos; i < pos + take; ++i)
        expected.back().push_back(train.features(order[i]).ids.data());
      pos += take;
      done += take;
    }
  }
  REQUIRE(batches.size() == expected.size());
  CHECK(batches.size() == 94 + 29);  // 93 full + 1 of 48 in epoch 0; 28 full + 1 of 8 in 1
  CHECK(batches == expected);
}

TEST_CASE("runs stepped in lockstep train exactly as fit() does (1 thread)") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  testing::SmallProblem p(1.3);  // the linear learning-rate schedule over two epochs
  p.config.net.sampling = OutputSampling::kRandom;
  REQUIRE(p.config.train.lr_schedule == LrSchedule::kLinear);
  Network reference(p.config.net);
  Trainer reference_trainer(reference, p.config.train,
                            make_training_sampler(p.config, reference, false));
  const FitProgress end = fit(reference, reference_trainer, p.data.train, p.config.train, {});

  Network a(p.config.net), b(p.config.net);
  Trainer ta(a, p.config.train, make_training_sampler(p.config, a, false));
  Trainer tb(b, p.config.train, make_training_sampler(p.config, b, false));
  FitRun ra(a, ta, p.data.train, p.config.train, {});
  FitRun rb(b, tb, p.data.train, p.config.train, {});
  while (!ra.done()) {
    ra.step();
    rb.step();
  }
  CHECK(rb.done());
  ra.finish();
  rb.finish();
  CHECK(ra.progress().samples == end.samples);
  CHECK(ra.progress().batches == end.batches);
  CHECK(rb.progress().batches == end.batches);
  const auto expected = exact_top5(reference, p.data.test);
  CHECK(same_predictions(exact_top5(a, p.data.test), expected));
  CHECK(same_predictions(exact_top5(b, p.data.test), expected));
  // And training did something: the untrained network predicts otherwise.
  CHECK_FALSE(same_predictions(exact_top5(Network(p.config.net), p.data.test), expected));
}

TEST_CASE("a run is done at its stop flag and at max_seconds") {
  testing::SmallProblem p(1.0);
  p.config.net.sampling = OutputSampling::kRandom;
  Network net(p.config.net);
  Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
  std::atomic<bool> stop{false};
  FitOptions options;
  options.stop = &stop;
  FitRun run(net, trainer, p.data.train, p.config.train, options);
  CHECK_FALSE(run.done());
  run.step();
  stop = true;
  CHECK(run.done());
  CHECK(run.progress().samples == 64);

  TrainConfig timed = p.config.train;
  timed.max_seconds = 1e-9;
  FitRun short_run(net, trainer, p.data.train, timed, {});
  CHECK_FALSE(short_run.done());  // no time has been measured before the first batch
  short_run.step();
  CHECK(short_run.done());
}

TEST_CASE("a run's seconds and samples/s leave out the time of its evaluations") {
  testing::SmallProblem p(0.1);
  p.config.net.sampling = OutputSampling::kRandom;
  p.config.train.eval_every = 2;
  p.config.train.eval_points = 50;
  Network net(p.config.net);
  Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
  // Each evaluation's report sleeps, so evaluations take at least `pause` each; the bounds below
  // hold however fast or slow the machine is.
  const auto pause = std::chrono::milliseconds(150);
  int evaluations = 0;
  FitOptions options;
  options.test = &p.data.test;
  options.on_progress = [&](const FitProgress& fp) {
    if (!fp.evaluated) return;
    ++evaluations;
    std::this_thread::sleep_for(pause);
  };
  const auto t0 = std::chrono::steady_clock::now();
  const FitProgress end = fit(net, trainer, p.data.train, p.config.train, options);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(evaluations >= 3);
  const double paused = evaluations * std::chrono::duration<double>(pause).count();
  CHECK(end.eval_seconds >= paused);
  CHECK(end.seconds > 0);
  CHECK(end.seconds + end.eval_seconds <= wall);
  CHECK(end.seconds <= wall - paused);
  CHECK(end.samples_per_second == doctest::Approx(end.samples / end.seconds));
}

TEST_CASE("the lr schedule ends where the planned samples or the time budget run out") {
  CHECK(schedule_position(0, 1000, 0, 0) == 0.0);
  CHECK(schedule_position(250, 1000, 99, 0) == doctest::Approx(0.25));   // no budget: by samples
  CHECK(schedule_position(250, 1000, 30, 60) == doctest::Approx(0.5));   // the budget is further
  CHECK(schedule_position(750, 1000, 30, 60) == doctest::Approx(0.75));  // the samples are
  CHECK(schedule_position(10, 1000, 90, 60) == 1.0);                     // never past the end
  CHECK(schedule_position(2000, 1000, 0, 0) == 1.0);
  TrainConfig t;
  t.lr_schedule = LrSchedule::kLinear;
  t.lr_final = 0.1;
  t.lr_decay = 1.0;
  CHECK(lr_scale(t, 0, 0) == 1.0);
  CHECK(lr_scale(t, 0.5, 3) == doctest::Approx(0.55));
  CHECK(lr_scale(t, 1, 8) == doctest::Approx(0.1));
  t.lr_decay = 0.5;  // times 0.5 per epoch done, on top of the linear fall
  CHECK(lr_scale(t, 0.5, 2) == doctest::Approx(0.55 * 0.25));
  CHECK(lr_scale(t, 0.25, 1.5) == doctest::Approx(0.775 * std::pow(0.5, 1.5)));
  t.lr_schedule = LrSchedule::kConstant;
  CHECK(lr_scale(t, 0.7, 0) == 1.0);
  CHECK(lr_scale(t, 0.7, 1) == 0.5);
}

TEST_CASE("a sampled evaluation during training scores what the model's sampled predictions do") {
  // Each training sampler (batch- and sample-shared LSH negatives, uniform ones): the run's last
  // evaluation, after its last batch, against one through LSH tables built for inference over
  // the trained rows, as `glide eval --mode sampled` and the library's sampled predictions do.
  for (const auto& [sampling, negatives] :
       {std::pair{OutputSampling::kLsh, LshNegatives::kBatch},
        std::pair{OutputSampling::kLsh, LshNegatives::kSample},
        std::pair{OutputSampling::kRandom, LshNegatives::kBatch}}) {
    CAPTURE(static_cast<int>(sampling));
    CAPTURE(static_cast<int>(negatives));
    testing::SmallProblem p(1.0);
    p.config.net.sampling = sampling;
    p.config.net.lsh_negatives = negatives;
    p.config.train.eval_points = 300;
    Network net(p.config.net);
    Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
    EvalResult last;
    FitOptions options;
    options.test = &p.data.test;
    options.eval_mode = EvalMode::kSampled;
    options.on_progress = [&](const FitProgress& fp) {
      if (fp.evaluated) last = fp.eval;
    };
    fit(net, trainer, p.data.train, p.config.train, options);
    const auto inference = make_inference_lsh_sampler(p.config, net);
    const EvalResult expected =
        evaluate(net, p.data.test, EvalMode::kSampled, inference.get(), p.config.train.eval_points);
    REQUIRE(expected.points == 300);
    CHECK(expected.precision[0] > 0.1);  // the tables find labels a trained network scores
    CHECK(last.points == expected.points);
    CHECK(last.mean_scored == doctest::Approx(expected.mean_scored));
    for (int k = 0; k < EvalResult::kMaxK; ++k) CHECK(last.precision[k] == expected.precision[k]);
  }
}

TEST_CASE("lr, output lr and output eps left at 0 train at the network's defaults") {
  tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
  const auto trained = [](const Config& c, const data::TrainTest& d) {
    Network net(c.net);
    Trainer trainer(net, c.train, make_training_sampler(c, net, false));
    fit(net, trainer, d.train, c.train, {});
    return exact_top5(net, d.test);
  };
  for (const bool wide : {false, true}) {
    CAPTURE(wide);
    testing::SmallProblem p(1.5);
    p.config.net.wide = wide ? WideMode::kOn : WideMode::kOff;
    p.config.net.sampling = OutputSampling::kRandom;
    Config zeros = p.config;
    zeros.train.lr = zeros.train.output_lr = zeros.train.output_eps = 0;
    Config given = p.config, other = p.config;
    given.train.lr = wide ? 3e-4 : 0.01;
    given.train.output_lr = wide ? 0.002 : 0.035;
    given.train.output_eps = wide ? 0.1 : 1e-7;
    // The other network's values: what a default that ignored the wide layer would train at.
    other.train.lr = wide ? 0.01 : 3e-4;
    other.train.output_lr = wide ? 0.035 : 0.002;
    other.train.output_eps = wide ? 1e-7 : 0.1;
    const auto expected = trained(given, p.data);
    CHECK(same_predictions(trained(zeros, p.data), expected));
    CHECK_FALSE(same_predictions(trained(other, p.data), expected));
    const TrainConfig filled = with_network_defaults(zeros.train, p.config.net.wide);
    CHECK(filled.lr == given.train.lr);
    CHECK(filled.output_lr == given.train.output_lr);
    CHECK(filled.output_eps == given.train.output_eps);
    // A value given is kept.
    CHECK(with_network_defaults(given.train, wide ? WideMode::kOff : WideMode::kOn).lr ==
          given.train.lr);
  }
  // The rare labels' path trains beside the network alone, at its lrs; its own lr is 0.5, the
  // centroid start's 0.05, and a value given is kept.
  const TrainConfig tail = with_network_defaults(TrainConfig{}, WideMode::kTail),
                    on = with_network_defaults(TrainConfig{}, WideMode::kOn),
                    automatic = with_network_defaults(TrainConfig{}, WideMode::kAuto);
  CHECK(tail.lr == 0.01);
  CHECK(tail.output_lr == 0.035);
  CHECK(tail.output_eps == 1e-7);
  CHECK(tail.wide_lr == 0.5);
  CHECK(on.wide_lr == 0.05);
  CHECK(automatic.wide_lr == 0.05);
  TrainConfig given_wide_lr;
  given_wide_lr.wide_lr = 0.2;
  CHECK(with_network_defaults(given_wide_lr, WideMode::kTail).wide_lr == 0.2);
}

TEST_CASE("validation points are spread evenly over the file and left out of training") {
  CHECK(evenly_spaced(10, 3) == std::vector<std::size_t>{2, 5, 8});
  CHECK(evenly_spaced(5, 5) == std::vector<std::size_t>{0, 1, 2, 3, 4});
  CHECK(evenly_spaced(7, 0).empty());
  CHECK_THROWS(evenly_spaced(3, 4));
  testing::SmallProblem p(1.0);
  const data::Dataset& all = p.data.train;
  const ValidationSplit split = split_validation(all, 700, "--valid-points");
  REQUIRE(split.valid.num_points() == 700);
  REQUIRE(split.train.num_points() == all.num_points() - 700);
  // Every point lands on exactly one side, in its order: rebuild the file from the two.
  const std::vector<std::size_t> held = evenly_spaced(all.num_points(), 700);
  for (std::size_t i = 0, h = 0, t = 0; i < all.num_points(); ++i) {
    const bool is_held = h < held.size() && held[h] == i;
    const data::Dataset& side = is_held ? split.valid : split.train;
    const std::size_t j = is_held ? h++ : t++;
    const auto a = all.features(i), b = side.features(j);
    REQUIRE(std::vector<std::uint32_t>(a.ids.begin(), a.ids.end()) ==
            std::vector<std::uint32_t>(b.ids.begin(), b.ids.end()));
    REQUIRE(std::vector<std::uint32_t>(all.labels(i).begin(), all.labels(i).end()) ==
            std::vector<std::uint32_t>(side.labels(j).begin(), side.labels(j).end()));
  }
  CHECK_THROWS_WITH(split_validation(all, all.num_points() / 2 + 1, "--valid-points"),
                    doctest::Contains("must leave at least half"));
  CHECK_THROWS(split_validation(all, 0, "--valid-points"));
}

TEST_CASE("a validated run flags each new best, reports it, and stops after `patience` without") {
  testing::SmallProblem p(6.0);
  p.config.net.sampling = OutputSampling::kRandom;
  // A large constant lr: validation scores rise, then wander around their best (three in a row
  // below it come within the first epoch and a half).
  p.config.train.output_lr = 1.0;
  p.config.train.lr = 0.05;
  p.config.train.lr_schedule = LrSchedule::kConstant;
  p.config.train.lr_decay = 1;
  p.config.train.eval_every = 10;
  const ValidationSplit split = split_validation(p.data.train, 1000, "valid");
  const InversePropensity propensity = InversePropensity::of(split.train);
  for (const BestBy by : {BestBy::kP1P5, BestBy::kPsp5}) {
    for (const std::uint32_t patience : {0u, 3u}) {
      CAPTURE(name(by));
      CAPTURE(patience);
      Network net(p.config.net);
      Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
      FitOptions options;
      options.validation = &split.valid;
      options.propensity = &propensity;
      options.best_by = by;
      options.patience = patience;
      std::vector<double> scores;
      std::vector<bool> flags;
      std::vector<std::uint64_t> reported;  // samples at each on_best call
      options.on_progress = [&](const FitProgress& fp) {
        if (!fp.validated) return;
        CHECK(fp.valid.points == 1000);
        scores.push_back(best_score(fp.valid, by));
        flags.push_back(fp.best);
      };
      options.on_best = [&](const FitProgress& fp) {
        CHECK(fp.best);
        reported.push_back(fp.samples);
      };
      const FitProgress end = fit(net, trainer, split.train, p.config.train, options);
      REQUIRE(scores.size() >= 4);
      double best = -1;
      std::size_t last_best = 0, bests = 0;
      for (std::size_t i = 0; i < scores.size(); ++i) {
        CHECK(flags[i] == (i == 0 || scores[i] > best));
        if (flags[i]) {
          best = scores[i];
          last_best = i;
          ++bests;
        }
      }
      CHECK(reported.size() == bests);
      CHECK(end.has_best);
      CHECK(end.best_score == best);
      CHECK(end.best_samples == reported.back());
      CHECK(end.since_best == scores.size() - 1 - last_best);
      const auto planned = static_cast<std::uint64_t>(std::llround(6.0 * split.train.num_points()));
      if (patience) {
        CHECK(end.since_best == patience);
        CHECK(end.samples < planned);
      } else {
        CHECK(end.samples == planned);
      }
    }
  }
}

TEST_CASE("a run's own validation scorer decides its best and its stop") {
  // A label-sharded run scores the validation points over every rank's shard: FitRun takes the
  // scores it is given. Scripted P@1: the best is the fourth, two below it end the run.
  testing::SmallProblem p(6.0);
  p.config.net.sampling = OutputSampling::kRandom;
  p.config.train.eval_every = 5;
  const ValidationSplit split = split_validation(p.data.train, 200, "valid");
  const InversePropensity propensity = InversePropensity::of(split.train);
  Network net(p.config.net);
  Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
  FitOptions options;
  options.validation = &split.valid;
  options.propensity = &propensity;
  options.best_by = BestBy::kP1;
  options.patience = 2;
  const std::vector<float> script{0.2f, 0.5f, 0.4f, 0.6f, 0.3f, 0.55f, 0.9f};
  std::size_t calls = 0;
  std::vector<std::uint64_t> bests;
  options.score = [&](const data::Dataset& ds, std::size_t max_points,
                      const InversePropensity* inverse) {
    CHECK(&ds == &split.valid);
    CHECK(max_points == 0);
    CHECK(inverse == &propensity);
    EvalResult r;
    r.points = ds.num_points();
    r.precision[0] = script.at(calls++);
    return r;
  };
  options.on_best = [&](const FitProgress& fp) { bests.push_back(fp.samples); };
  const FitProgress end = fit(net, trainer, split.train, p.config.train, options);
  CHECK(calls == 6);           // stopped at the second validation after the best, before 0.9
  REQUIRE(bests.size() == 3);  // 0.2, 0.5, 0.6
  CHECK(end.best_score == doctest::Approx(0.6));
  CHECK(end.best_samples == bests.back());
  CHECK(end.since_best == 2);
  CHECK(end.samples < static_cast<std::uint64_t>(6 * split.train.num_points()));
}

TEST_CASE("a validated run that ends between evaluation points is validated at its end") {
  testing::SmallProblem p(0.3);
  p.config.net.sampling = OutputSampling::kRandom;
  p.config.train.eval_every = 1000;  // no evaluation point inside the run
  const ValidationSplit split = split_validation(p.data.train, 500, "valid");
  Network net(p.config.net);
  Trainer trainer(net, p.config.train, make_training_sampler(p.config, net, false));
  FitOptions options;
  options.validation = &split.valid;
  int validations = 0;
  options.on_progress = [&](const FitProgress& fp) { validations += fp.validated; };
  const FitProgress end = fit(net, trainer, split.train, p.config.train, options);
  CHECK(validations == 1);
  CHECK(end.has_best);
  CHECK(end.best_samples == end.samples);
  CHECK(end.validated_samples == end.samples);

  // Settings that need what is not there are refused.
  FitOptions no_valid;
  no_valid.patience = 2;
  CHECK_THROWS_WITH(FitRun(net, trainer, split.train, p.config.train, no_valid),
                    doctest::Contains("patience needs validation points"));
  FitOptions psp;
  psp.validation = &split.valid;
  psp.best_by = BestBy::kPsp5;
  CHECK_THROWS_WITH(FitRun(net, trainer, split.train, p.config.train, psp),
                    doctest::Contains("propensities"));
}
