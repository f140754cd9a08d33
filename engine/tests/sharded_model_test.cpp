// Label-sharded models (engine/sharded_model.h) without MPI: the ranges, the relabelled data, the
// exact round trip network -> shards -> network (rows, optimizer state, wide layer), the sharded
// model files and their manifest's faults, and sharded training (Trainer::set_exchange) with the
// ranks as threads of this process against one trainer of the whole layer.
#include <doctest/doctest.h>
#include <tbb/global_control.h>

#include <barrier>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/fit.h"
#include "engine/sharded_model.h"
#include "engine/tests/small_problem.h"
#include "engine/wide_centroids.h"
#include "tests/error_of.h"

using namespace glide;
using namespace glide::engine;
using glide::testing::contains;
using glide::testing::error_of;

namespace {

template <class A>
bool same(const A& a, const A& b) {
  return a.size() == b.size() && std::equal(a.data(), a.data() + a.size(), b.data());
}

bool same_params(const ParamMatrix& a, const ParamMatrix& b) {
  return a.rows == b.rows && a.cols == b.cols && same(a.w, b.w) && same(a.m, b.m) && same(a.v, b.v);
}

bool same_params(const ParamVector& a, const ParamVector& b) {
  return same(a.w, b.w) && same(a.m, b.m) && same(a.v, b.v);
}

// Every parameter and optimizer moment equal bit for bit.
void check_identical(const Network& a, const Network& b) {
  CHECK(a.num_labels() == b.num_labels());
  CHECK(same_params(a.input, b.input));
  CHECK(same_params(a.input_bias, b.input_bias));
  REQUIRE(a.hidden.size() == b.hidden.size());
  for (std::size_t l = 0; l < a.hidden.size(); ++l) {
    CHECK(same_params(a.hidden[l], b.hidden[l]));
    CHECK(same_params(a.hidden_bias[l], b.hidden_bias[l]));
  }
  CHECK(a.output->precision() == b.output->precision());
  CHECK(same_params(a.output->clone()->release_as_f32(), b.output->clone()->release_as_f32()));
  CHECK(same_params(a.output_bias, b.output_bias));
  CHECK(a.wide.offsets() == b.wide.offsets());
  CHECK(std::ranges::equal(a.wide.labels(), b.wide.labels()));
  CHECK(std::ranges::equal(a.wide.weights(), b.wide.weights()));
  CHECK(std::ranges::equal(a.wide.optimizer_sums(), b.wide.optimizer_sums()));
  CHECK(a.step == b.step);
}

void fill_random(AlignedArray<float>& a, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = u(rng);
}

// The small problem's network with a wide layer, and every moment and bias set to random values
// (a fresh network's are zero and would hide a moment copied from the wrong row).
struct Model {
  engine::testing::SmallProblem p{1};
  std::unique_ptr<Network> net;
  Model() {
    p.config.net.wide = WideMode::kOn;
    net = std::make_unique<Network>(p.config.net);
    net->wide = WideLayer::from_centroids(p.data.train, p.config.net.num_features,
                                          p.config.net.num_labels, {});
    net->wide.ensure_optimizer_state();
    std::mt19937 rng(3);
    for (float& s : net->wide.optimizer_sums())
      s = std::uniform_real_distribution<float>(0, 1)(rng);
    fill_random(net->output_bias.w, rng);
    fill_random(net->output_bias.m, rng);
    fill_random(net->input.m, rng);
    ParamMatrix rows = net->output->release_as_f32();
    fill_random(rows.m, rng);
    fill_random(rows.v, rng);
    net->output = make_output_matrix(std::move(rows), {.precision = Precision::kF32});
    net->step = 17;
  }
};

std::vector<std::unique_ptr<Network>> slices(const Network& net, int ranks,
                                             const TrainConfig& train) {
  std::vector<std::unique_ptr<Network>> out;
  for (int r = 0; r < ranks; ++r)
    out.push_back(slice_network(net, shard_range(net.num_labels(), ranks, r), train));
  return out;
}

std::unique_ptr<Network> merged(const std::vector<std::unique_ptr<Network>>& shards,
                                const Config& config) {
  std::vector<Network*> nets;
  for (const auto& s : shards) nets.push_back(s.get());
  return merge_networks(nets, config.net, config.train);
}

}  // namespace

TEST_CASE("shard ranges cover the labels in order, sizes within one of each other") {
  for (std::uint32_t labels = 1; labels <= 40; ++labels)
    for (int ranks = 1; ranks <= static_cast<int>(labels); ++ranks) {
      std::uint32_t next = 0, smallest = labels, largest = 0;
      for (int r = 0; r < ranks; ++r) {
        const LabelRange range = shard_range(labels, ranks, r);
        REQUIRE(range.begin == next);
        smallest = std::min(smallest, range.size());
        largest = std::max(largest, range.size());
        next = range.end;
      }
      CHECK(next == labels);
      CHECK(largest - smallest <= 1);
      CHECK(smallest >= 1);
    }
  CHECK(contains(error_of([] { shard_range(3, 4, 0); }), "every rank needs at least one label"));
}

TEST_CASE("a shard's data keeps its labels as local ids, the features untouched") {
  engine::testing::SmallProblem p(1);
  const data::Dataset& d = p.data.train;
  std::vector<std::vector<std::uint32_t>> seen(d.num_points());
  for (int r = 0; r < 3; ++r) {
    const LabelRange range = shard_range(d.num_labels, 3, r);
    data::Dataset s = d;
    keep_shard_labels(s, range);
    CHECK(s.num_labels == range.size());
    CHECK(s.feature_ids == d.feature_ids);
    CHECK(s.values == d.values);
    s.validate("shard");
    for (std::size_t i = 0; i < s.num_points(); ++i)
      for (const std::uint32_t y : s.labels(i)) seen[i].push_back(y + range.begin);
  }
  for (std::size_t i = 0; i < d.num_points(); ++i) {
    std::vector<std::uint32_t> want(d.labels(i).begin(), d.labels(i).end());
    std::sort(want.begin(), want.end());
    std::sort(seen[i].begin(), seen[i].end());
    CHECK(seen[i] == want);
  }
}

TEST_CASE("slicing into shards and merging them gives the network back exactly") {
  Model m;
  for (const int ranks : {1, 2, 3, 7}) {
    const auto shards = slices(*m.net, ranks, m.p.config.train);
    std::uint64_t wide_entries = 0;
    for (const auto& s : shards) wide_entries += s->wide.entries();
    CHECK(wide_entries == m.net->wide.entries());
    check_identical(*merged(shards, m.p.config), *m.net);
  }
  SUBCASE("bf16 rows with their moments") {
    output_to_bf16(*m.net, /*optimizer=*/true);
    TrainConfig bf16 = m.p.config.train;
    bf16.precision = TrainPrecision::kBF16;
    const auto shards = slices(*m.net, 3, bf16);
    CHECK(shards[1]->output->precision() == Precision::kBF16);
    check_identical(*merged(shards, {m.p.config.net, bf16}), *m.net);
  }
}

TEST_CASE("sharded model files: a manifest loads merged, a rank its own shard or a re-sharding") {
  Model m;
  const std::string path = engine::testing::temp_path("glide_sharded_model", "m.glide");
  const TrainingState state{.samples = 1234, .batches = 20};
  ShardManifest manifest{.num_labels = m.net->num_labels(), .state = state, .shards = {}};
  const auto shards = slices(*m.net, 3, m.p.config.train);
  // Label l was counted 3l + 1 times; each shard file keeps its labels' counts.
  std::vector<std::uint32_t> counts(m.net->num_labels());
  for (std::uint32_t l = 0; l < counts.size(); ++l) counts[l] = 3 * l + 1;
  const auto counts_of = [&](LabelRange range) {
    return std::vector<std::uint32_t>(counts.begin() + range.begin, counts.begin() + range.end);
  };
  for (int r = 0; r < 3; ++r) {
    const LabelRange range = shard_range(m.net->num_labels(), 3, r);
    TrainingState own = state;
    own.label_counts = counts_of(range);
    own.label_count_points = 999;
    save_model(shard_file_path(path, r, 3, 20), *shards[r],
               {shard_config(m.p.config.net, range), m.p.config.train}, own);
    manifest.shards.push_back({shard_file_path(path, r, 3, 20), range});
  }
  write_shard_manifest(path, manifest);
  CHECK(is_shard_manifest(path));
  CHECK_FALSE(is_shard_manifest(shard_file_path(path, 0, 3, 20)));

  const LoadedModel whole = load_model(path);
  check_identical(*whole.net, *m.net);
  CHECK(whole.config.net.num_labels == m.net->num_labels());
  CHECK(whole.state.samples == 1234);
  CHECK(whole.has_optimizer_state);

  CHECK(whole.state.label_counts == counts);
  CHECK(whole.state.label_count_points == 999);

  // A rank's shard has its own labels' counts, whichever way it was read.
  const LoadedModel own = load_model_shard(path, 3, 1);
  check_identical(*own.net, *shards[1]);
  CHECK(own.config.net.num_labels == m.net->num_labels());
  CHECK(own.state.samples == 1234);
  CHECK(own.state.label_counts == counts_of(shard_range(m.net->num_labels(), 3, 1)));
  CHECK(own.state.label_count_points == 999);
  const LoadedModel resharded = load_model_shard(path, 2, 1);
  check_identical(*resharded.net, *slices(*m.net, 2, m.p.config.train)[1]);
  CHECK(resharded.state.label_counts == counts_of(shard_range(m.net->num_labels(), 2, 1)));
  CHECK(resharded.state.label_count_points == 999);

  SUBCASE("faults name the manifest and what is wrong") {
    const auto rewrite = [&](const std::string& from, const std::string& to) {
      std::ifstream in(path);
      std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      const std::size_t at = text.find(from);
      REQUIRE(at != std::string::npos);
      text.replace(at, from.size(), to);
      std::ofstream(path) << text;
    };
    SUBCASE("a gap between ranges") {
      rewrite("\"begin\": 0", "\"begin\": 1");
      CHECK(contains(error_of([&] { load_model(path); }), "expected a range starting at 0"));
    }
    SUBCASE("a file in another folder") {
      rewrite("\"m.glide.b20.shard-2-of-3\"", "\"../m.glide.b20.shard-2-of-3\"");
      CHECK(contains(error_of([&] { load_model(path); }), "is not a plain name"));
    }
    SUBCASE("a missing shard") {
      std::filesystem::remove(shard_file_path(path, 2, 3, 20));
      const std::string e = error_of([&] { load_model(path); });
      CHECK(contains(e, "m.glide.b20.shard-2-of-3"));
      CHECK(contains(e, "cannot open"));
    }
    SUBCASE("a shard of another size") {
      rewrite("\"m.glide.b20.shard-0-of-3\"",
              "\"m.glide.b20.shard-1-of-3\"");  // 333 labels, not 334
      CHECK(contains(error_of([&] { load_model(path); }), "labels; the manifest"));
    }
  }
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

namespace {

// ShardExchange between threads of this process: each call waits for every rank's values, then
// every rank reduces them in rank order (the same result everywhere).
class ThreadExchange {
 public:
  explicit ThreadExchange(int ranks) : ranks_(ranks), sync_(ranks), slots_(ranks) {}

  class Rank final : public ShardExchange {
   public:
    Rank(ThreadExchange& x, int r) : x_(x), r_(r) {}
    void max(std::span<float> v) override {
      x_.reduce(r_, v, [](float a, float b) { return std::max(a, b); });
    }
    void sum(std::span<float> v) override { x_.reduce(r_, v, std::plus<float>()); }
    void sum(std::span<double> v) override { x_.reduce(r_, v, std::plus<double>()); }

   private:
    ThreadExchange& x_;
    int r_;
  };

 private:
  template <class T, class Op>
  void reduce(int r, std::span<T> v, Op op) {
    slots_[r].assign(v.begin(), v.end());
    sync_.arrive_and_wait();
    for (std::size_t i = 0; i < v.size(); ++i) {
      T acc = static_cast<T>(slots_[0][i]);
      for (int q = 1; q < ranks_; ++q) acc = op(acc, static_cast<T>(slots_[q][i]));
      v[i] = acc;
    }
    sync_.arrive_and_wait();
  }

  int ranks_;
  std::barrier<> sync_;
  std::vector<std::vector<double>> slots_;
};

}  // namespace

TEST_CASE("sharded training (ranks as threads) gives one trainer's weights") {
  tbb::global_control one_thread(tbb::global_control::max_allowed_parallelism, 1);
  engine::testing::SmallProblem p(0.2);
  p.config.net.wide = WideMode::kOn;
  p.config.net.sampling = OutputSampling::kDense;
  // Adam's first steps divide a gradient by its own size: with a tiny eps, a gradient near 0 whose
  // sum over shards rounds the other way moves its weight a whole lr the other way. A larger eps
  // keeps the update proportional to the gradient where it is that small, so that the weights
  // compare the arithmetic, not that amplification.
  // The output layer's eps is larger still: beside a wide layer that fits the points, a true
  // label's gradient (p - 1 / |y|) can be the residue of a near cancellation, rounded differently
  // when the softmax sums over shards.
  p.config.train.eps = 1e-4;
  p.config.train.output_eps = 1e-3;
  SUBCASE("softmax, the wide layer's norm power auto") {}
  SUBCASE("sigmoid, norm power 0.5") {
    p.config.net.loss = LossKind::kSigmoid;
    p.config.net.wide_norm_power = 0.5;
  }
  SUBCASE("softmax, two share rounds") {
    p.config.net.wide_share_rounds = 2;
  }
  SUBCASE("softmax, no share rounds, norm power 0.5 (the shards scale by the whole median)") {
    p.config.net.wide_share_rounds = 0;
    p.config.net.wide_contrast = 0;
    p.config.net.wide_norm_power = 0.5;
  }
  SUBCASE("softmax, contrast, no share rounds (each label's neighbours are from every shard)") {
    p.config.net.wide_share_rounds = 0;
    p.config.net.wide_contrast = 1;
  }
  Network whole(p.config.net);
  Trainer trainer(whole, p.config.train, nullptr);
  fit(whole, trainer, p.data.train, p.config.train, {});
  // The shards start their wide layer from the whole training set's statistics (the norm power
  // and share rounds chosen on it, and its median label norm, which scales every label at a power
  // below 1); with shares, from the whole set's centroids (a point's shares need all its labels).
  // The choice's neighbours serve the final build, as in fit.
  LabelNeighbours neighbours;
  const double reference_norm = resolve_wide_start(p.config.net, p.data.train, &neighbours);
  CHECK(p.config.net.wide_norm_power != kWideNormPowerAuto);
  CHECK(p.config.net.wide_share_rounds != kWideShareRoundsAuto);
  CHECK(p.config.net.wide_contrast != kWideContrastAuto);
  // With share rounds or contrast the shards' layers come from shard_wide_start and need no
  // median.
  const bool whole_build = p.config.net.wide_share_rounds > 0 || p.config.net.wide_contrast > 0;
  CHECK((whole_build ? reference_norm == 0 : reference_norm > 0));

  constexpr int kRanks = 3;
  ThreadExchange exchange(kRanks);
  std::vector<std::unique_ptr<Network>> shards(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      const LabelRange range = shard_range(p.config.net.num_labels, kRanks, r);
      data::Dataset mine = p.data.train;
      keep_shard_labels(mine, range);
      shards[r] = std::make_unique<Network>(shard_config(p.config.net, range),
                                            NetworkStorage{.first_label = range.begin});
      shards[r]->wide = shard_wide_start(p.config.net, p.data.train, range, &neighbours);
      Trainer t(*shards[r], p.config.train, nullptr);
      ThreadExchange::Rank x(exchange, r);
      t.set_exchange(&x);
      FitOptions options;
      options.wide_reference_norm = reference_norm;
      fit(*shards[r], t, mine, p.config.train, options);
    });
  for (auto& t : threads) t.join();
  const auto together = merged(shards, p.config);
  const auto max_diff = [](const float* a, const float* b, std::size_t n) {
    double d = 0;
    for (std::size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
    return d;
  };
  CHECK(together->step == whole.step);
  // One process sums a sample's softmax terms down the rows of its block of samples; shards sum
  // their own rows and then across shards. Rounding in the two orders, through the steps of
  // training, stays within kTolerance; a wrong gradient would be orders of magnitude off.
  constexpr double kTolerance = 5e-5;
  CHECK(max_diff(together->input.w.data(), whole.input.w.data(), whole.input.w.size()) <
        kTolerance);
  const ParamMatrix a = together->output->to_f32(), b = whole.output->to_f32();
  CHECK(max_diff(a.w.data(), b.w.data(), a.w.size()) < kTolerance);
  CHECK(max_diff(together->output_bias.w.data(), whole.output_bias.w.data(),
                 whole.output_bias.size()) < kTolerance);
  REQUIRE(together->wide.weights().size() == whole.wide.weights().size());
  CHECK(max_diff(together->wide.weights().data(), whole.wide.weights().data(),
                 whole.wide.weights().size()) < kTolerance);
  // The training moved the weights far more than the tolerance.
  const Network start(p.config.net);
  CHECK(max_diff(start.input.w.data(), whole.input.w.data(), whole.input.w.size()) >
        20 * kTolerance);
}
