#include "engine/output_index.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/error.h"
#include "common/rng.h"
#include "engine/kernels.h"
#include "engine/model_file.h"
#include "engine/output_matrix.h"
#include "engine/params.h"

namespace glide::engine {

void OutputIndexOptions::check() const {
  if (leaf_rows < 1) fail("output index: leaf_rows must be at least 1");
  if (branching < 2) fail("output index: branching must be at least 2");
  if (iterations < 1) fail("output index: iterations must be at least 1");
  if (sample < branching) fail("output index: sample must be at least branching");
}

namespace {

// The rows as unit vectors [w, b, sqrt(M^2 - |w|^2 - b^2)] / M, `stride` floats each.
struct UnitRows {
  std::size_t dim = 0, stride = 0;
  AlignedArray<float> a;
  const float* row(std::size_t j) const { return a.data() + j * stride; }
};

UnitRows unit_rows(const OutputMatrix& W, const float* bias) {
  const std::uint32_t N = W.rows(), d = W.cols();
  UnitRows u;
  u.dim = d + 2;
  u.stride = padded(u.dim);
  u.a = AlignedArray<float>(std::size_t{N} * u.stride);
  std::vector<float> norm2(N);
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, N, 1024), [&](const auto& r) {
    std::vector<float> buf(d);
    for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
      const float* w = W.row_f32(j, buf.data());
      float* a = u.a.data() + std::size_t{j} * u.stride;
      double n2 = double{bias[j]} * bias[j];
      for (std::uint32_t c = 0; c < d; ++c) {
        a[c] = w[c];
        n2 += double{w[c]} * w[c];
      }
      a[d] = bias[j];
      norm2[j] = static_cast<float>(n2);
    }
  });
  const float max2 = N ? *std::max_element(norm2.begin(), norm2.end()) : 0.f;
  const float inv = max2 > 0 ? 1.f / std::sqrt(max2) : 1.f;
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, N, 4096), [&](const auto& r) {
    for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
      float* a = u.a.data() + std::size_t{j} * u.stride;
      for (std::uint32_t c = 0; c <= d; ++c) a[c] *= inv;
      a[d + 1] = std::sqrt(std::max(0.f, 1.f - norm2[j] * inv * inv));
    }
  });
  return u;
}

void normalize(float* v, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double{v[i]} * v[i];
  if (s <= 0) return;
  const float inv = static_cast<float>(1 / std::sqrt(s));
  for (std::size_t i = 0; i < n; ++i) v[i] *= inv;
}

// The centroid in `C` (k rows of u.stride) nearest in angle to `x`.
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

// Splits ids[0, n) (rows of `u`) into at most `k` clusters by spherical k-means; reorders `ids`
// so each cluster is contiguous and returns the cluster sizes in order (empty ones dropped).
std::vector<std::uint32_t> split(const UnitRows& u, std::uint32_t* ids, std::uint32_t n,
                                 std::uint32_t k, const OutputIndexOptions& o, std::uint64_t seed) {
  const Kernels& kern = kernels();
  const std::size_t S = u.stride;
  Rng rng(seed);
  // The rows k-means trains on: a random subset of at most o.sample.
  std::vector<std::uint32_t> sample(ids, ids + n);
  const std::uint32_t m = std::min(n, o.sample);
  for (std::uint32_t i = 0; i < m; ++i) std::swap(sample[i], sample[i + rng.below(n - i)]);
  sample.resize(m);
  AlignedArray<float> C(std::size_t{k} * S), sum(std::size_t{k} * S);
  for (std::uint32_t c = 0; c < k; ++c) std::copy_n(u.row(sample[c]), S, C.data() + c * S);
  std::vector<std::uint32_t> count(k);
  for (std::uint32_t it = 0; it < o.iterations; ++it) {
    std::fill(sum.begin(), sum.end(), 0.f);
    std::fill(count.begin(), count.end(), 0u);
    for (const std::uint32_t j : sample) {
      const std::uint32_t c = nearest(C.data(), k, u.row(j), S, kern);
      kern.axpy(1.f, u.row(j), sum.data() + c * S, S);
      ++count[c];
    }
    for (std::uint32_t c = 0; c < k; ++c) {
      float* dst = C.data() + c * S;
      if (count[c] == 0) {  // reseed an empty cluster on a random row
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
    // Rows k-means cannot tell apart (e.g. identical ones): cut the range into k even parts.
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

}  // namespace

std::shared_ptr<const OutputIndex> OutputIndex::build(const OutputMatrix& W, const float* bias,
                                                      const OutputIndexOptions& o) {
  o.check();
  const std::uint32_t N = W.rows(), d = W.cols();
  if (N == 0) fail("output index: the layer has no rows");
  const UnitRows u = unit_rows(W, bias);
  std::vector<std::uint32_t> ids(N);
  std::iota(ids.begin(), ids.end(), 0u);
  // Split level by level; ranges of `ids` that are small enough are leaves, in order.
  std::vector<Range> level{{0, N}}, leaves;
  while (!level.empty()) {
    std::vector<std::vector<Range>> parts(level.size());
    tbb::parallel_for(std::size_t{0}, level.size(), [&](std::size_t i) {
      const Range r = level[i];
      const std::uint32_t n = r.end - r.begin;
      if (n <= o.leaf_rows) return;
      const std::uint32_t k = std::min<std::uint32_t>(
          {o.branching, (n + o.leaf_rows - 1) / o.leaf_rows, n});
      const std::uint64_t seed = derive_seed(o.seed, (std::uint64_t{r.begin} << 32) | r.end);
      std::uint32_t at = r.begin;
      for (const std::uint32_t s : split(u, ids.data() + r.begin, n, k, o, seed)) {
        parts[i].push_back({at, at + s});
        at += s;
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

  auto index = std::shared_ptr<OutputIndex>(new OutputIndex());
  OutputIndex& x = *index;
  x.rows_ = N;
  x.cols_ = d;
  x.stride_ = padded(std::size_t{d} + 1);
  x.row_ids_ = std::move(ids);
  x.offsets_.push_back(0);
  for (const Range& r : leaves) x.offsets_.push_back(r.end);
  x.centroid_ = AlignedArray<float>(leaves.size() * x.stride_);
  tbb::parallel_for(std::size_t{0}, leaves.size(), [&](std::size_t c) {
    std::vector<float> mean(u.stride);
    for (std::uint32_t i = leaves[c].begin; i < leaves[c].end; ++i)
      for (std::size_t q = 0; q < u.dim; ++q) mean[q] += u.row(x.row_ids_[i])[q];
    normalize(mean.data(), u.dim);
    std::copy_n(mean.data(), std::size_t{d} + 1, x.centroid_.data() + c * x.stride_);
  });
  return index;
}

std::uint32_t OutputIndex::default_probes() const {
  const double avg = static_cast<double>(rows_) / leaves();
  const double probes = std::ceil(kDefaultFraction * rows_ / avg);
  return static_cast<std::uint32_t>(std::clamp(probes, 1.0, static_cast<double>(leaves())));
}

std::size_t OutputIndex::bytes() const {
  return centroid_.size() * sizeof(float) +
         (offsets_.size() + row_ids_.size()) * sizeof(std::uint32_t);
}

void OutputIndex::score_leaves(const float* H, std::size_t stride, std::size_t batch,
                               float* out) const {
  const Kernels& kern = kernels();
  const std::uint32_t L = leaves();
  // Leaf by leaf, so a centroid is read once for the whole batch.
  for (std::uint32_t c = 0; c < L; ++c) {
    const float* cen = centroid_.data() + std::size_t{c} * stride_;
    for (std::size_t s = 0; s < batch; ++s)
      out[s * L + c] = kern.dot(cen, H + s * stride, cols_) + cen[cols_];
  }
}

void OutputIndex::candidates(const float* leaf_scores, std::uint32_t probes,
                             std::uint32_t min_rows, std::vector<std::uint32_t>& out) const {
  const std::uint32_t L = leaves();
  probes = std::clamp<std::uint32_t>(probes, 1, L);
  thread_local std::vector<std::pair<float, std::uint32_t>> order;
  order.resize(L);
  for (std::uint32_t c = 0; c < L; ++c) order[c] = {leaf_scores[c], c};
  // Ties by leaf number: the same leaves whatever the order of the scores.
  const auto better = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  if (probes < L) std::nth_element(order.begin(), order.begin() + probes, order.end(), better);
  const std::size_t start = out.size();
  const auto take = [&](std::uint32_t p) {
    const std::uint32_t c = order[p].second;
    out.insert(out.end(), row_ids_.begin() + offsets_[c], row_ids_.begin() + offsets_[c + 1]);
  };
  std::uint32_t p = 0;
  for (; p < probes; ++p) take(p);
  if (out.size() - start < min_rows && p < L) {
    std::sort(order.begin() + p, order.end(), better);
    for (; p < L && out.size() - start < min_rows; ++p) take(p);
  }
}

// --- model file ------------------------------------------------------------------------------

namespace {
constexpr const char* kMeta = "output_index.meta";
constexpr const char* kCentroids = "output_index.centroids";
constexpr const char* kOffsets = "output_index.offsets";
constexpr const char* kRows = "output_index.rows";
}  // namespace

void OutputIndex::save(ModelFileWriter& w) const {
  nlohmann::json meta{{"method", "clusters"}, {"rows", rows_}, {"cols", cols_},
                      {"leaves", leaves()}};
  w.add_json(kMeta, meta.dump());
  w.add(kCentroids, DType::kF32, {leaves(), stride_}, std::as_bytes(centroid_.span()));
  w.add(kOffsets, DType::kU32, {offsets_.size()}, std::as_bytes(std::span(offsets_)));
  w.add(kRows, DType::kU32, {row_ids_.size()}, std::as_bytes(std::span(row_ids_)));
}

std::shared_ptr<const OutputIndex> OutputIndex::load(const std::string& path, std::uint32_t rows,
                                                     std::uint32_t cols) {
  return load(ModelFileReader(path), rows, cols);
}

bool OutputIndex::in_file(const ModelFileReader& r) {
  return r.has(kMeta);
}

std::shared_ptr<const OutputIndex> OutputIndex::load(const ModelFileReader& r, std::uint32_t rows,
                                                     std::uint32_t cols) {
  if (!in_file(r)) return nullptr;
  const auto bad = [&](const char* section, const std::string& what) {
    fail(r.path(), std::string("section '") + section + "': " + what);
  };
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(r.read_json(kMeta));
  } catch (const nlohmann::json::exception& e) {
    bad(kMeta, e.what());
  }
  std::uint64_t leaves = 0;
  try {
    if (meta.at("method").get<std::string>() != "clusters")
      bad(kMeta, "unknown method '" + meta.at("method").get<std::string>() + "'");
    if (meta.at("rows").get<std::uint64_t>() != rows || meta.at("cols").get<std::uint64_t>() != cols)
      bad(kMeta, "the index is over " + meta.at("rows").dump() + " x " + meta.at("cols").dump() +
                     " rows but the output layer is " + std::to_string(rows) + " x " +
                     std::to_string(cols));
    leaves = meta.at("leaves").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    bad(kMeta, e.what());
  }
  if (leaves < 1 || leaves > rows) bad(kMeta, "leaves must be 1.." + std::to_string(rows));
  auto index = std::shared_ptr<OutputIndex>(new OutputIndex());
  OutputIndex& x = *index;
  x.rows_ = rows;
  x.cols_ = cols;
  x.stride_ = padded(std::size_t{cols} + 1);
  x.centroid_ = AlignedArray<float>(leaves * x.stride_);
  x.offsets_.resize(leaves + 1);
  x.row_ids_.resize(rows);
  const std::vector<std::uint64_t> cshape{leaves, x.stride_}, oshape{leaves + 1}, rshape{rows};
  r.read_into(kCentroids, DType::kF32, cshape, std::as_writable_bytes(x.centroid_.span()));
  r.read_into(kOffsets, DType::kU32, oshape, std::as_writable_bytes(std::span(x.offsets_)));
  r.read_into(kRows, DType::kU32, rshape, std::as_writable_bytes(std::span(x.row_ids_)));
  for (const float v : x.centroid_.span())
    if (!std::isfinite(v)) bad(kCentroids, "holds a value that is not finite");
  if (x.offsets_.front() != 0 || x.offsets_.back() != rows)
    bad(kOffsets, "must run from 0 to " + std::to_string(rows));
  for (std::size_t c = 0; c < leaves; ++c)
    if (x.offsets_[c] >= x.offsets_[c + 1])
      bad(kOffsets, "leaf " + std::to_string(c) + " is empty or the offsets decrease");
  std::vector<bool> seen(rows);
  for (const std::uint32_t j : x.row_ids_) {
    if (j >= rows) bad(kRows, "row " + std::to_string(j) + " is out of range");
    if (seen[j]) bad(kRows, "row " + std::to_string(j) + " is listed twice");
    seen[j] = true;
  }
  return index;
}

}  // namespace glide::engine
