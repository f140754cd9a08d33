// Builds a small synthetic extreme-classification problem in memory, trains a sparse network on
// it with glide, predicts, and prints P@1 on held-out points.
#include <glide/glide.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

constexpr std::uint32_t kFeatures = 1000, kLabels = 50;

// Planted structure: label j owns features [20 j, 20 j + 20); a point of label j has 8 of them
// plus 3 random "noise" features. Rows are stored in CSR arrays, as an application would hold
// them, and viewed (not copied) with glide::SparseBatchView.
struct Data {
  std::vector<std::uint64_t> row_offsets{0}, label_offsets{0};
  std::vector<std::uint32_t> feature_ids, label_ids;
  std::vector<float> values;

  explicit Data(std::size_t points, unsigned seed) {
    std::mt19937 rng(seed);
    for (std::size_t i = 0; i < points; ++i) {
      const std::uint32_t label = rng() % kLabels;
      for (int t = 0; t < 11; ++t) {
        feature_ids.push_back(t < 8 ? label * 20 + rng() % 20 : rng() % kFeatures);
        values.push_back(1.0f / std::sqrt(11.0f));
      }
      row_offsets.push_back(feature_ids.size());
      label_ids.push_back(label);
      label_offsets.push_back(label_ids.size());
    }
  }
  glide::SparseBatchView view() const {
    return {row_offsets, feature_ids, values, label_offsets, label_ids};
  }
};

}  // namespace

int main() {
  try {
    const Data train(500, 1), test(200, 2);

    glide::ModelConfig config;
    config.num_features = kFeatures;
    config.num_labels = kLabels;
    config.hidden = {64};
    config.sampling = glide::Sampling::kLsh;  // SLIDE: LSH-sampled output layer
    config.sparsity = 0.2;
    config.lsh.L = 10;
    config.lsh.range_pow = 8;  // small tables for a small label set
    glide::Model model = glide::Model::create(config);

    glide::TrainOptions options;
    options.epochs = 15;
    options.batch = 32;
    options.lr = 0.01;
    const glide::TrainResult result = model.train(
        train.view(), options,
        [](const glide::TrainProgress& p) {
          if (p.has_eval && static_cast<int>(p.epoch) % 5 == 0)
            std::printf("epoch %.0f: loss %.3f, test P@1 %.3f\n", p.epoch, p.loss, p.eval.p_at(1));
          return true;  // false would stop training here
        },
        test.view());
    std::printf("trained %llu samples in %.2f s\n", static_cast<unsigned long long>(result.samples),
                result.seconds);

    // One query: the top 3 labels of the first test point.
    const std::size_t n = test.row_offsets[1];
    const glide::Prediction top = model.predict(
        glide::SparseVectorView{{test.feature_ids.data(), n}, {test.values.data(), n}}, 3);
    std::printf("first test point (label %u): top labels %u %u %u\n", test.label_ids[0],
                top.labels[0], top.labels[1], top.labels[2]);

    const glide::Metrics m = model.evaluate(test.view());
    std::printf("glide %s: P@1 %.3f  P@3 %.3f  nDCG@3 %.3f  (%zu test points)\n", glide::version(),
                m.p_at(1), m.p_at(3), m.ndcg_at(3), m.points);
    return 0;
  } catch (const glide::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
