// SLIDE's sampler: the output neurons whose weight rows share buckets with the sample's last
// hidden activation in LSH tables over those rows.
#include <tbb/enumerable_thread_specific.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/rng.h"
#include "engine/output_sampler.h"
#include "hashing/active_set_sampler.h"
#include "hashing/lsh_index.h"

namespace glide::engine {

namespace {

hashing::HashConfig hash_config(const NetworkConfig& net) {
  hashing::HashConfig h;
  h.kind = hashing::parse_hash_kind(net.lsh.family);
  h.dim = net.hidden.back();
  h.K = net.lsh.K;
  h.L = net.lsh.L;
  h.range_pow = net.lsh.range_pow;
  h.sparse_ratio = net.lsh.simhash_ratio;
  h.bin_size = net.lsh.bin_size;
  h.seed = derive_seed(net.seed, 77);
  h.validate();
  return h;
}

hashing::TableConfig table_config(const NetworkConfig& net) {
  hashing::TableConfig t;
  t.bucket_capacity = net.lsh.bucket_size;
  t.policy = hashing::parse_insert_policy(net.lsh.insert_policy);
  t.seed = derive_seed(net.seed, 78);
  return t;
}

class LshSampler final : public OutputSampler {
 public:
  LshSampler(const NetworkConfig& net, const TrainConfig& train, const ParamMatrix& output,
             bool fill_random)
      : index_(hash_config(net), table_config(net)),
        num_neurons_(output.rows),
        budget_(sampling_budget(output.rows, net.sparsity)),
        rebuild_interval_(train.rebuild_every),
        next_rebuild_(train.rebuild_every),
        growth_(train.rebuild_growth),
        rehash_every_(train.rehash_every),
        batch_size_(train.batch),
        seed_(net.seed),
        threads_([this] {
          return Local{
              hashing::ActiveSetSampler(num_neurons_, derive_seed(seed_, 100 + next_thread_++)),
              {},
              {},
              {},
              0};
        }) {
    sample_.strategy = hashing::parse_sample_strategy(net.lsh.strategy);
    sample_.min_count = net.lsh.min_count;
    sample_.fill_random = false;
    fill_shared_ = fill_random;
    next_rehash_ = rehash_every_;
    const auto t = std::chrono::steady_clock::now();
    index_.build(output.rows, output.w.data(), output.stride);
    tables_ = index_.snapshot();
    refresh_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  void begin_batch(std::uint64_t batch_index,
                   std::span<const std::span<const std::uint32_t>> labels) override {
    tables_ = index_.snapshot();
    if (!fill_shared_) return;
    // Training adds the batch's labels (in-batch negatives) and tops each sample up to the
    // budget from uniform negatives drawn once per batch: shared rows are read and updated once
    // per batch instead of once per sample.
    if (label_stamp_.size() != num_neurons_) label_stamp_.assign(num_neurons_, 0);
    batch_labels(labels, label_stamp_, label_epoch_, batch_labels_);
    Rng rng(derive_seed(seed_, 1u << 20 | batch_index));
    shared_.resize(budget_);
    for (auto& j : shared_) j = rng.below(num_neurons_);
  }

  void select(const float* h, std::span<const std::uint32_t> labels,
              std::vector<std::uint32_t>& out) override {
    Local& L = threads_.local();
    // One snapshot per batch: libstdc++'s atomic<shared_ptr> locks, and a reference count
    // touched per query would bounce between cores.
    const hashing::TableSet* tables = tables_.get();
    L.buckets.resize(tables->family->num_tables());
    tables->hash_dense(h, L.buckets.data());
    L.labels.clear();
    for (std::uint32_t y : labels)
      if (std::find(L.labels.begin(), L.labels.end(), y) == L.labels.end()) L.labels.push_back(y);
    hashing::SampleConfig cfg = sample_;
    cfg.budget = budget_ + static_cast<std::uint32_t>(L.labels.size());
    L.sampler.sample(tables->tables, L.buckets, L.labels, cfg, out);
    if (fill_shared_) {
      mark(L, out);
      top_up(L, shared_, cfg.budget, out);
      top_up(L, batch_labels_, out.size() + batch_labels_.size(), out);
    }
  }

  void after_batch(const ParamMatrix& output, std::uint64_t batch_index) override {
    samples_ += batch_size_;
    if (batch_index + 1 < next_rebuild_) return;
    const auto t = std::chrono::steady_clock::now();
    if (index_.poll()) {  // never queue a rebuild behind a running one
      const bool redraw = rehash_every_ && samples_ >= next_rehash_;
      if (redraw) next_rehash_ = samples_ + rehash_every_;
      index_.start_rebuild(output.rows, output.w.data(), output.stride, redraw);
      rebuild_interval_ = std::max<double>(1, rebuild_interval_ * growth_);
      next_rebuild_ = batch_index + 1 + static_cast<std::uint64_t>(rebuild_interval_);
      ++rebuilds_;
    }
    refresh_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  double refresh_seconds() const override { return refresh_seconds_; }

  std::size_t memory_bytes() const override { return index_.table_memory_bytes(); }

 private:
  struct Local {
    hashing::ActiveSetSampler sampler;
    std::vector<std::uint32_t> buckets, labels;
    std::vector<std::uint32_t> stamp;  // membership marks for top_up
    std::uint32_t epoch = 0;
  };

  // Marks the ids already in `out` so top_up skips them.
  void mark(Local& L, const std::vector<std::uint32_t>& out) const {
    if (L.stamp.size() != num_neurons_) L.stamp.assign(num_neurons_, 0);
    if (++L.epoch == 0) {
      std::fill(L.stamp.begin(), L.stamp.end(), 0);
      L.epoch = 1;
    }
    for (std::uint32_t j : out) L.stamp[j] = L.epoch;
  }
  // Appends ids of `from` not yet in `out` until `out` holds `limit` ids.
  static void top_up(Local& L, const std::vector<std::uint32_t>& from, std::size_t limit,
                     std::vector<std::uint32_t>& out) {
    for (std::uint32_t j : from) {
      if (out.size() >= limit) break;
      if (L.stamp[j] == L.epoch) continue;
      L.stamp[j] = L.epoch;
      out.push_back(j);
    }
  }

  hashing::LshIndex index_;
  std::shared_ptr<const hashing::TableSet> tables_;
  std::uint32_t num_neurons_, budget_;
  double rebuild_interval_;
  std::uint64_t next_rebuild_;
  double growth_;
  std::uint64_t rehash_every_, next_rehash_ = 0, samples_ = 0;
  std::uint32_t batch_size_;
  std::uint64_t seed_;
  std::atomic<std::uint64_t> next_thread_{0};
  hashing::SampleConfig sample_;
  bool fill_shared_ = false;
  std::vector<std::uint32_t> shared_, batch_labels_, label_stamp_;
  std::uint32_t label_epoch_ = 0;
  tbb::enumerable_thread_specific<Local> threads_;
  double refresh_seconds_ = 0;
  std::uint64_t rebuilds_ = 0;
};

}  // namespace

std::unique_ptr<OutputSampler> make_lsh_sampler(const NetworkConfig& net, const TrainConfig& train,
                                                const ParamMatrix& output, bool fill_random) {
  return std::make_unique<LshSampler>(net, train, output, fill_random);
}

}  // namespace glide::engine
