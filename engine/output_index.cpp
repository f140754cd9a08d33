#include "engine/output_index.h"
#include "engine/sharded_model.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/error.h"
#include "common/rng.h"
#include "engine/kernels.h"
#include "engine/model_file.h"
#include "engine/network.h"
#include "engine/output_matrix.h"
#include "engine/params.h"
#include "engine/predictor.h"

namespace glide::engine {

void OutputIndexOptions::check() const {
  if (iterations < 1) fail("output index: iterations must be at least 1");
  if (max_points < 1) fail("output index: max_points must be at least 1");
}

namespace {

constexpr std::uint32_t kBranching = 16;      // clusters per k-means split
constexpr std::uint32_t kSplitSample = 8192;  // points a split's k-means trains on

// Points as unit vectors, `stride` floats each.
struct UnitPoints {
  std::size_t dim = 0, stride = 0;
  AlignedArray<float> a;
  const float* row(std::size_t i) const { return a.data() + i * stride; }
};

void normalize(float* v, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double{v[i]} * v[i];
  if (s <= 0) return;
  const float inv = static_cast<float>(1 / std::sqrt(s));
  for (std::size_t i = 0; i < n; ++i) v[i] *= inv;
}

// The centroid in `C` (k rows of `stride`) nearest in angle to `x`.
std::uint32_t nearest(const float* C, std::uint32_t k, const float* x, std::size_t stride,
                      const Kernels& kern) {
  std::uint32_t best = 0;
  float best_dot = -INFINITY;
  for (std::uint32_t c = 0; c < k; ++c) {
    const float v = kern.dot(C + c * stride, x, stride);
    if (v > best_dot) best_dot = v, best = c;
  }
  return best;
}

// Splits ids[0, n) (points of `u`) into at most `k` clusters by spherical k-means; reorders `ids`
// so each cluster is contiguous and returns the cluster sizes in order (empty ones dropped).
std::vector<std::uint32_t> split(const UnitPoints& u, std::uint32_t* ids, std::uint32_t n,
                                 std::uint32_t k, std::uint32_t iterations, std::uint64_t seed) {
  const Kernels& kern = kernels();
  const std::size_t S = u.stride;
  Rng rng(seed);
  std::vector<std::uint32_t> sample(ids, ids + n);
  const std::uint32_t m = std::min(n, kSplitSample);
  for (std::uint32_t i = 0; i < m; ++i) std::swap(sample[i], sample[i + rng.below(n - i)]);
  sample.resize(m);
  AlignedArray<float> C(std::size_t{k} * S), sum(std::size_t{k} * S);
  for (std::uint32_t c = 0; c < k; ++c) std::copy_n(u.row(sample[c]), S, C.data() + c * S);
  std::vector<std::uint32_t> count(k);
  for (std::uint32_t it = 0; it < iterations; ++it) {
    std::fill(sum.begin(), sum.end(), 0.f);
    std::fill(count.begin(), count.end(), 0u);
    for (const std::uint32_t j : sample) {
      const std::uint32_t c = nearest(C.data(), k, u.row(j), S, kern);
      kern.axpy(1.f, u.row(j), sum.data() + c * S, S);
      ++count[c];
    }
    for (std::uint32_t c = 0; c < k; ++c) {
      float* dst = C.data() + c * S;
      if (count[c] == 0) {  // reseed an empty cluster on a random point
        std::copy_n(u.row(sample[rng.below(m)]), S, dst);
        continue;
      }
      std::copy_n(sum.data() + c * S, S, dst);
      normalize(dst, S);
    }
  }
  std::vector<std::uint32_t> label(n);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, n, 2048), [&](const auto& r) {
    for (std::uint32_t i = r.begin(); i < r.end(); ++i)
      label[i] = nearest(C.data(), k, u.row(ids[i]), S, kern);
  });
  std::vector<std::uint32_t> size(k + 1);
  for (const std::uint32_t l : label) ++size[l + 1];
  if (*std::max_element(size.begin(), size.end()) == n) {
    // Points k-means cannot tell apart (e.g. identical ones): cut the range into k even parts.
    std::vector<std::uint32_t> even;
    for (std::uint32_t c = 0; c < k; ++c) even.push_back((n * (c + 1)) / k - (n * c) / k);
    return even;
  }
  std::vector<std::uint32_t> at(k);
  for (std::uint32_t c = 1; c < k; ++c) at[c] = at[c - 1] + size[c];
  std::vector<std::uint32_t> sorted(n);
  for (std::uint32_t i = 0; i < n; ++i) sorted[at[label[i]]++] = ids[i];
  std::copy(sorted.begin(), sorted.end(), ids);
  std::vector<std::uint32_t> sizes;
  for (std::uint32_t c = 1; c <= k; ++c)
    if (size[c]) sizes.push_back(size[c]);
  return sizes;
}

struct Range {
  std::uint32_t begin, end;
};

// Clusters of at most `leaf` points by recursive spherical k-means: ranges of `ids`, in order.
std::vector<Range> cluster(const UnitPoints& u, std::vector<std::uint32_t>& ids, std::uint32_t leaf,
                           std::uint32_t iterations, std::uint64_t seed) {
  const std::uint32_t n = static_cast<std::uint32_t>(ids.size());
  std::vector<Range> level{{0, n}}, leaves;
  while (!level.empty()) {
    std::vector<std::vector<Range>> parts(level.size());
    tbb::parallel_for(std::size_t{0}, level.size(), [&](std::size_t i) {
      const Range r = level[i];
      const std::uint32_t size = r.end - r.begin;
      if (size <= leaf) return;
      const std::uint32_t k = std::min({kBranching, (size + leaf - 1) / leaf, size});
      std::uint32_t at = r.begin;
      const std::uint64_t s = derive_seed(seed, (std::uint64_t{r.begin} << 32) | r.end);
      for (const std::uint32_t part : split(u, ids.data() + r.begin, size, k, iterations, s)) {
        parts[i].push_back({at, at + part});
        at += part;
      }
    });
    std::vector<Range> next;
    for (std::size_t i = 0; i < level.size(); ++i) {
      if (parts[i].empty()) leaves.push_back(level[i]);
      next.insert(next.end(), parts[i].begin(), parts[i].end());
    }
    level = std::move(next);
  }
  std::sort(leaves.begin(), leaves.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  return leaves;
}

// Labels seen by one query's candidate search (a stamp per label; cleared by a new stamp).
class Seen {
 public:
  void reset(std::size_t n) {
    if (mark_.size() != n) {
      mark_.assign(n, 0);
      stamp_ = 0;
    }
    if (++stamp_ == 0) {
      std::fill(mark_.begin(), mark_.end(), 0u);
      stamp_ = 1;
    }
  }
  bool first(std::uint32_t j) {  // true the first time j is seen
    if (mark_[j] == stamp_) return false;
    mark_[j] = stamp_;
    return true;
  }

 private:
  std::vector<std::uint32_t> mark_;
  std::uint32_t stamp_ = 0;
};

}  // namespace

std::shared_ptr<const OutputIndex> OutputIndex::build(
    const Network& net, const data::Dataset& train, const OutputIndexOptions& o,
    const std::function<void(const std::string&)>& progress) {
  o.check();
  const OutputMatrix& W = *net.output;
  const std::uint32_t L = W.rows(), d = W.cols();
  if (train.num_points() == 0) fail("output index: the training set has no points");
  if (train.num_features > net.config().num_features)
    fail("output index: the training set has " + std::to_string(train.num_features) +
         " features, the model " + std::to_string(net.config().num_features));
  if (train.num_labels > L)
    fail("output index: the training set has " + std::to_string(train.num_labels) +
         " labels, the model " + std::to_string(L) + " (is it the model's training data?)");
  // The points used: all, or an even spread of max_points.
  const std::size_t total = train.num_points();
  const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(total, o.max_points));
  std::vector<std::size_t> point(n);
  for (std::uint32_t i = 0; i < n; ++i) point[i] = i * total / n;

  // Their last hidden activations, as unit vectors.
  UnitPoints u;
  u.dim = d;
  u.stride = padded(d);
  u.a = AlignedArray<float>(std::size_t{n} * u.stride);
  constexpr std::size_t kBatch = 256;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, kBatch), [&](const auto& r) {
    std::vector<data::SparseView> views;
    for (std::size_t i = r.begin(); i < r.end(); ++i) views.push_back(train.features(point[i]));
    HiddenActivations acts;
    net.forward_hidden(views, acts, kernels());
    const std::size_t last = acts.layers.size() - 1;
    for (std::size_t i = r.begin(); i < r.end(); ++i) {
      float* dst = u.a.data() + i * u.stride;
      std::copy_n(acts.layers[last].data() + (i - r.begin()) * acts.strides[last], d, dst);
      normalize(dst, d);
    }
  });
  const std::uint32_t clusters =
      o.clusters ? std::min(o.clusters, n) : std::clamp<std::uint32_t>(n / 8, 1, 65536);
  const std::uint32_t leaf = std::max<std::uint32_t>(1, (n + clusters - 1) / clusters);
  std::vector<std::uint32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0u);
  const std::vector<Range> leaves = cluster(u, ids, leaf, o.iterations, o.seed);
  if (progress)
    progress("output index: " + std::to_string(leaves.size()) + " clusters of " +
             std::to_string(n) + " training points");

  // The exact top labels of an even spread of points, as many as the budget pays for.
  const double per_point = static_cast<double>(L) * d;
  const std::uint32_t predicted_points = o.predicted
                                             ? static_cast<std::uint32_t>(std::min<double>(
                                                   n, std::floor(o.predict_budget / per_point)))
                                             : 0;
  std::vector<std::vector<std::uint32_t>> top(n);
  if (predicted_points > 0) {
    std::vector<std::uint32_t> which(predicted_points);
    for (std::uint32_t i = 0; i < predicted_points; ++i)
      which[i] = static_cast<std::uint32_t>(std::uint64_t{i} * n / predicted_points);
    const auto exact = borrow_predictor(net, EvalMode::kExact, nullptr);
    std::vector<data::SparseView> views;
    std::vector<Prediction> preds;
    for (std::size_t b = 0; b < which.size(); b += kBatch) {
      views.clear();
      const std::size_t e = std::min(which.size(), b + kBatch);
      for (std::size_t i = b; i < e; ++i) views.push_back(train.features(point[which[i]]));
      exact->predict(views, o.predicted, preds);
      for (std::size_t i = b; i < e; ++i) top[which[i]] = std::move(preds[i - b].labels);
    }
    if (progress)
      progress("output index: exact top " + std::to_string(o.predicted) + " of " +
               std::to_string(predicted_points) + " points");
  }

  // Each cluster's centroid and labels.
  const std::size_t nc = leaves.size();
  UnitPoints cen;
  cen.dim = d;
  cen.stride = u.stride;
  cen.a = AlignedArray<float>(nc * cen.stride);
  std::vector<std::vector<std::uint32_t>> lists(nc);
  tbb::parallel_for(std::size_t{0}, nc, [&](std::size_t c) {
    float* centroid = cen.a.data() + c * cen.stride;
    std::vector<std::uint32_t>& list = lists[c];
    for (std::uint32_t i = leaves[c].begin; i < leaves[c].end; ++i) {
      const std::uint32_t p = ids[i];
      for (std::size_t q = 0; q < d; ++q) centroid[q] += u.row(p)[q];
      for (const std::uint32_t label : train.labels(point[p])) list.push_back(label);
      list.insert(list.end(), top[p].begin(), top[p].end());
    }
    normalize(centroid, d);
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  });
  // The clusters grouped by their centroids (about sqrt(clusters) groups), so that a query
  // scores the groups and then only the clusters of its best groups.
  std::vector<std::uint32_t> order(nc);
  std::iota(order.begin(), order.end(), 0u);
  const auto group_size = static_cast<std::uint32_t>(std::ceil(std::sqrt(double(nc))));
  const std::vector<Range> groups =
      cluster(cen, order, group_size, o.iterations, derive_seed(o.seed, 1));

  auto index = std::shared_ptr<OutputIndex>(new OutputIndex());
  OutputIndex& x = *index;
  x.labels_ = L;
  x.cols_ = d;
  x.stride_ = u.stride;
  x.centroid_ = AlignedArray<float>(nc * x.stride_);
  x.offsets_.push_back(0);
  for (std::size_t c = 0; c < nc; ++c) {
    std::copy_n(cen.row(order[c]), x.stride_, x.centroid_.data() + c * x.stride_);
    const auto& list = lists[order[c]];
    x.labels_of_.insert(x.labels_of_.end(), list.begin(), list.end());
    x.offsets_.push_back(static_cast<std::uint32_t>(x.labels_of_.size()));
  }
  x.group_centroid_ = AlignedArray<float>(groups.size() * x.stride_);
  x.group_offsets_.push_back(0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    float* gc = x.group_centroid_.data() + g * x.stride_;
    for (std::uint32_t c = groups[g].begin; c < groups[g].end; ++c)
      for (std::size_t q = 0; q < d; ++q) gc[q] += x.centroid_[c * x.stride_ + q];
    normalize(gc, d);
    x.group_offsets_.push_back(groups[g].end);
  }
  // The head: the labels with the largest bias.
  std::vector<std::uint32_t> by_bias(L);
  std::iota(by_bias.begin(), by_bias.end(), 0u);
  const std::uint32_t head = std::min(o.head, L);
  const float* bias = net.output_bias.w.data();
  std::partial_sort(by_bias.begin(), by_bias.begin() + head, by_bias.end(),
                    [&](std::uint32_t a, std::uint32_t b) {
                      return bias[a] > bias[b] || (bias[a] == bias[b] && a < b);
                    });
  x.head_.assign(by_bias.begin(), by_bias.begin() + head);
  return index;
}

std::size_t OutputIndex::bytes() const {
  return (centroid_.size() + group_centroid_.size()) * sizeof(float) +
         (offsets_.size() + labels_of_.size() + head_.size() + group_offsets_.size()) *
             sizeof(std::uint32_t);
}

void OutputIndex::score_groups(const float* H, std::size_t stride, std::size_t batch,
                               float* out) const {
  const Kernels& kern = kernels();
  const std::uint32_t G = groups();
  // Group by group, so a centroid is read once for the whole batch.
  for (std::uint32_t g = 0; g < G; ++g) {
    const float* cen = group_centroid_.data() + std::size_t{g} * stride_;
    for (std::size_t s = 0; s < batch; ++s) out[s * G + g] = kern.dot(cen, H + s * stride, cols_);
  }
}

std::uint32_t OutputIndex::groups_searched(std::uint32_t probes) const {
  return std::clamp<std::uint32_t>(4 * probes, kMinGroups, groups());
}

void OutputIndex::candidates(const float* h, const float* group_scores, std::uint32_t probes,
                             std::uint32_t min_labels, std::vector<std::uint32_t>& out) const {
  const Kernels& kern = kernels();
  const std::uint32_t G = groups();
  probes = std::max<std::uint32_t>(probes, 1);
  thread_local std::vector<std::pair<float, std::uint32_t>> order;
  thread_local Seen seen;
  seen.reset(labels_);
  // Higher score first, ties by number: the same choice whatever the order of the scores.
  const auto better = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  // The best groups, then their clusters by score.
  order.resize(G);
  for (std::uint32_t g = 0; g < G; ++g) order[g] = {group_scores[g], g};
  const std::uint32_t searched = groups_searched(probes);
  if (searched < G) std::nth_element(order.begin(), order.begin() + searched, order.end(), better);
  thread_local std::vector<std::pair<float, std::uint32_t>> clusters;
  clusters.clear();
  for (std::uint32_t i = 0; i < searched; ++i) {
    const std::uint32_t g = order[i].second;
    for (std::uint32_t c = group_offsets_[g]; c < group_offsets_[g + 1]; ++c)
      clusters.push_back({kern.dot(centroid_.data() + std::size_t{c} * stride_, h, cols_), c});
  }
  // The best `probes` in order; the rest only sorted when they are needed (min_labels).
  const std::size_t first = std::min<std::size_t>(probes, clusters.size());
  std::partial_sort(clusters.begin(), clusters.begin() + first, clusters.end(), better);
  const std::size_t start = out.size();
  for (const std::uint32_t j : head_)
    if (seen.first(j)) out.push_back(j);
  for (std::size_t i = 0; i < clusters.size(); ++i) {
    if (i >= probes && out.size() - start >= min_labels) break;
    if (i == first) std::sort(clusters.begin() + first, clusters.end(), better);
    const std::uint32_t c = clusters[i].second;
    for (std::uint32_t q = offsets_[c]; q < offsets_[c + 1]; ++q)
      if (seen.first(labels_of_[q])) out.push_back(labels_of_[q]);
  }
  // Still short (k above what the searched clusters know): the lowest label ids not yet taken.
  for (std::uint32_t j = 0; j < labels_ && out.size() - start < min_labels; ++j)
    if (seen.first(j)) out.push_back(j);
}

// --- model file ------------------------------------------------------------------------------

namespace {
constexpr const char* kMeta = "output_index.meta";
constexpr const char* kCentroids = "output_index.centroids";
constexpr const char* kOffsets = "output_index.offsets";
constexpr const char* kLabels = "output_index.labels";
constexpr const char* kHead = "output_index.head";
constexpr const char* kGroupCentroids = "output_index.group_centroids";
constexpr const char* kGroupOffsets = "output_index.group_offsets";
}  // namespace

void OutputIndex::save(ModelFileWriter& w) const {
  const nlohmann::json meta{{"method", "query-clusters"},
                            {"labels", labels_},
                            {"cols", cols_},
                            {"clusters", clusters()},
                            {"entries", labels_of_.size()},
                            {"head", head_.size()},
                            {"groups", groups()}};
  w.add_json(kMeta, meta.dump());
  w.add(kCentroids, DType::kF32, {clusters(), stride_}, std::as_bytes(centroid_.span()));
  w.add(kOffsets, DType::kU32, {offsets_.size()}, std::as_bytes(std::span(offsets_)));
  if (!labels_of_.empty())
    w.add(kLabels, DType::kU32, {labels_of_.size()}, std::as_bytes(std::span(labels_of_)));
  if (!head_.empty()) w.add(kHead, DType::kU32, {head_.size()}, std::as_bytes(std::span(head_)));
  w.add(kGroupCentroids, DType::kF32, {groups(), stride_}, std::as_bytes(group_centroid_.span()));
  w.add(kGroupOffsets, DType::kU32, {group_offsets_.size()},
        std::as_bytes(std::span(group_offsets_)));
}

bool OutputIndex::in_file(const ModelFileReader& r) {
  return r.has(kMeta);
}

std::shared_ptr<const OutputIndex> OutputIndex::load(const std::string& path, std::uint32_t labels,
                                                     std::uint32_t cols) {
  if (is_shard_manifest(path)) return nullptr;  // a sharded model saves no index
  return load(ModelFileReader(path), labels, cols);
}

std::shared_ptr<const OutputIndex> OutputIndex::load(const ModelFileReader& r, std::uint32_t labels,
                                                     std::uint32_t cols) {
  if (!in_file(r)) return nullptr;
  const auto bad = [&](const char* section, const std::string& what) {
    fail(r.path(), std::string("section '") + section + "': " + what);
  };
  std::uint64_t clusters = 0, entries = 0, head = 0, groups = 0;
  try {
    const nlohmann::json meta = nlohmann::json::parse(r.read_json(kMeta));
    if (meta.at("method").get<std::string>() != "query-clusters")
      bad(kMeta, "unknown method " + meta.at("method").dump());
    if (meta.at("labels").get<std::uint64_t>() != labels ||
        meta.at("cols").get<std::uint64_t>() != cols)
      bad(kMeta, "the index is for " + meta.at("labels").dump() + " labels of " +
                     meta.at("cols").dump() + " inputs but the output layer is " +
                     std::to_string(labels) + " x " + std::to_string(cols));
    clusters = meta.at("clusters").get<std::uint64_t>();
    entries = meta.at("entries").get<std::uint64_t>();
    head = meta.at("head").get<std::uint64_t>();
    groups = meta.at("groups").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    bad(kMeta, e.what());
  }
  if (clusters < 1 || clusters > (1u << 24)) bad(kMeta, "clusters must be 1..2^24");
  if (entries > (std::uint64_t{1} << 32) - 1) bad(kMeta, "too many entries");
  if (head > labels) bad(kMeta, "the head has more labels than the model");
  if (groups < 1 || groups > clusters) bad(kMeta, "groups must be 1..clusters");
  auto index = std::shared_ptr<OutputIndex>(new OutputIndex());
  OutputIndex& x = *index;
  x.labels_ = labels;
  x.cols_ = cols;
  x.stride_ = padded(cols);
  x.centroid_ = AlignedArray<float>(clusters * x.stride_);
  x.offsets_.resize(clusters + 1);
  x.labels_of_.resize(entries);
  x.head_.resize(head);
  x.group_centroid_ = AlignedArray<float>(groups * x.stride_);
  x.group_offsets_.resize(groups + 1);
  const std::vector<std::uint64_t> cshape{clusters, x.stride_}, oshape{clusters + 1},
      lshape{entries}, hshape{head};
  r.read_into(kCentroids, DType::kF32, cshape, std::as_writable_bytes(x.centroid_.span()));
  r.read_into(kOffsets, DType::kU32, oshape, std::as_writable_bytes(std::span(x.offsets_)));
  if (entries)
    r.read_into(kLabels, DType::kU32, lshape, std::as_writable_bytes(std::span(x.labels_of_)));
  if (head) r.read_into(kHead, DType::kU32, hshape, std::as_writable_bytes(std::span(x.head_)));
  const std::vector<std::uint64_t> gshape{groups, x.stride_}, goshape{groups + 1};
  r.read_into(kGroupCentroids, DType::kF32, gshape,
              std::as_writable_bytes(x.group_centroid_.span()));
  r.read_into(kGroupOffsets, DType::kU32, goshape,
              std::as_writable_bytes(std::span(x.group_offsets_)));
  for (const float v : x.group_centroid_.span())
    if (!std::isfinite(v)) bad(kGroupCentroids, "holds a value that is not finite");
  if (x.group_offsets_.front() != 0 || x.group_offsets_.back() != clusters)
    bad(kGroupOffsets, "must run from 0 to " + std::to_string(clusters));
  for (std::size_t g = 0; g < groups; ++g)
    if (x.group_offsets_[g] >= x.group_offsets_[g + 1])
      bad(kGroupOffsets, "group " + std::to_string(g) + " is empty or the offsets decrease");
  for (const float v : x.centroid_.span())
    if (!std::isfinite(v)) bad(kCentroids, "holds a value that is not finite");
  if (x.offsets_.front() != 0 || x.offsets_.back() != entries)
    bad(kOffsets, "must run from 0 to " + std::to_string(entries));
  for (std::size_t c = 0; c < clusters; ++c)
    if (x.offsets_[c] > x.offsets_[c + 1])
      bad(kOffsets, "the offsets of cluster " + std::to_string(c) + " decrease");
  for (const std::uint32_t j : x.labels_of_)
    if (j >= labels) bad(kLabels, "label " + std::to_string(j) + " is out of range");
  for (const std::uint32_t j : x.head_)
    if (j >= labels) bad(kHead, "label " + std::to_string(j) + " is out of range");
  return index;
}

}  // namespace glide::engine
