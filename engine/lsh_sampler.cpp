// SLIDE's sampler: the output neurons whose weight rows share buckets with the sample's last
// hidden activation in LSH tables over those rows.
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "engine/logq_correction.h"
#include "engine/output_sampler.h"
#include "hashing/active_set_sampler.h"
#include "hashing/lsh_index.h"

namespace glide::engine {

namespace {

// What a sampler serves: the output layer while training (labels and uniform negatives shared by
// the batch, half the budget from the tables), the output layer at inference (the whole budget
// from the tables), or a hidden layer (exactly the budget per sample, topped up at random, and
// deterministic for a given input so that inference repeats itself).
enum class Role { kOutputTraining, kOutputInference, kHidden };

struct SamplerSpec {
  LshConfig lsh;
  std::uint32_t dim = 0;
  double sparsity = 0;
  std::uint64_t seed = 0;  // hash functions, tables and random choices derive from it
  Role role = Role::kOutputInference;
  LshNegatives negatives = LshNegatives::kSample;  // kOutputTraining
  std::uint32_t query_every = 1;                   // kOutputTraining, batch negatives
  FirstTables first_tables = FirstTables::kBuildNow;
};

hashing::HashConfig hash_config(const SamplerSpec& spec) {
  hashing::HashConfig h;
  h.kind = spec.lsh.family;
  h.dim = spec.dim;
  h.K = spec.lsh.K;
  h.L = spec.lsh.L;
  h.range_pow = spec.lsh.range_pow;
  h.sparse_ratio = spec.lsh.simhash_ratio;
  h.bin_size = spec.lsh.bin_size;
  h.seed = derive_seed(spec.seed, 77);
  h.validate();
  return h;
}

hashing::TableConfig table_config(const SamplerSpec& spec) {
  hashing::TableConfig t;
  t.bucket_capacity = spec.lsh.bucket_size;
  t.policy = spec.lsh.insert_policy;
  t.seed = derive_seed(spec.seed, 78);
  return t;
}

class LshSampler final : public OutputSampler {
 public:
  LshSampler(const SamplerSpec& spec, const TrainConfig& train, const RowsF32& output)
      : index_(hash_config(spec), table_config(spec)),
        num_neurons_(output.rows),
        budget_(sampling_budget(output.rows, spec.sparsity)),
        rebuild_interval_(train.rebuild_every),
        next_rebuild_(train.rebuild_every),
        growth_(train.rebuild_growth),
        rehash_every_(train.rehash_every),
        batch_size_(train.batch),
        seed_(spec.seed),
        threads_([this] {
          return Local{
              hashing::ActiveSetSampler(num_neurons_, derive_seed(seed_, 100 + next_thread_++)),
              {},
              {},
              {}};
        }) {
    sample_.strategy = spec.lsh.strategy;
    sample_.min_count = spec.lsh.min_count;
    hidden_ = spec.role == Role::kHidden;
    sample_.fill_random = hidden_;
    training_ = spec.role == Role::kOutputTraining;
    batch_negatives_ = training_ && spec.negatives == LshNegatives::kBatch;
    query_every_ = std::max<std::uint32_t>(spec.query_every, 1);
    if (training_ && train.sampled_correction == SampledCorrection::kLogQ)
      logq_ = std::make_unique<LogQCorrection>(output.rows);
    next_rehash_ = rehash_every_;
    if (spec.first_tables == FirstTables::kBuildNow) {
      index_.build(output.rows, output.row);
      tables_ = index_.snapshot();
    }
  }

  void begin_batch(std::uint64_t batch_index,
                   std::span<const std::span<const std::uint32_t>> labels,
                   const BatchActivations& acts) override {
    tables_ = index_.snapshot();
    if (!training_) return;
    // Shared by the batch: its labels (in-batch negatives), then half the budget in uniform
    // negatives; the other half comes from the LSH tables, each sample's own or (batch mode)
    // shared too. Before the first tables exist, uniform negatives fill the whole budget.
    if (stamp_.size() != num_neurons_) stamp_.assign(num_neurons_, 0);
    batch_labels(labels, stamp_, epoch_, shared_);
    Rng rng(derive_seed(seed_, 1u << 20 | batch_index));
    const std::size_t num_labels = shared_.size();
    const std::uint32_t uniform =
        std::min<std::uint32_t>(tables_ ? budget_ - budget_ / 2 : budget_,
                                num_neurons_ - static_cast<std::uint32_t>(shared_.size()));
    for (std::uint32_t drawn = 0; drawn < uniform;) {
      const std::uint32_t j = rng.below(num_neurons_);
      if (stamp_[j] == epoch_) continue;
      stamp_[j] = epoch_;
      shared_.push_back(j);
      ++drawn;
    }
    const std::size_t drawn = shared_.size();
    if (batch_negatives_ && tables_) share_most_retrieved(batch_index, acts);
    // Labels and uniform draws are corrected. LSH candidates are not uniform draws: a sample's
    // own were retrieved for it (q ~ 1), and the batch's shared ones were retrieved for the
    // samples most like it; they get no correction (0) either way.
    if (logq_) {
      logq_->observe(labels);
      logq_->shared_corrections(std::span(shared_).first(drawn), labels.size(), uniform, num_labels,
                                corrections_);
      corrections_.resize(shared_.size(), 0.0f);
    }
  }

  void set_label_counts(std::span<const std::uint32_t> counts, std::uint64_t points) override {
    if (logq_) logq_->set_counts(counts, points);
  }

  std::span<const std::uint32_t> shared() const override { return shared_; }

  // Inference: candidates every query scores before the tables' (counted in the budget).
  void set_always_include(std::vector<std::uint32_t> ids) { always_ = std::move(ids); }
  std::span<const float> shared_corrections() const override { return corrections_; }

  void select(const float* h, std::vector<std::uint32_t>& out) override {
    // The batch's candidates are all in shared() in batch mode, and before the first tables.
    if (batch_negatives_ || !tables_) {
      out.clear();
      return;
    }
    retrieve(h, threads_.local(), out);
  }

  void after_batch(const RowsF32& output, std::uint64_t batch_index) override {
    samples_ += batch_size_;
    if (batch_index + 1 < next_rebuild_) return;
    if (index_.poll()) {  // never queue a rebuild behind a running one
      const bool redraw = rehash_every_ && samples_ >= next_rehash_;
      if (redraw) next_rehash_ = samples_ + rehash_every_;
      index_.start_rebuild(output.rows, output.row, redraw);
      rebuild_interval_ = std::max<double>(1, rebuild_interval_ * growth_);
      next_rebuild_ = batch_index + 1 + static_cast<std::uint64_t>(rebuild_interval_);
    }
  }

 private:
  struct Local {
    hashing::ActiveSetSampler sampler;
    std::vector<std::uint32_t> buckets;
    std::vector<std::uint32_t> candidates;  // one sample's, batch mode
    std::vector<std::uint32_t> retrieved;   // the candidates of this thread's samples, batch mode
  };

  // The table candidates of activation `h`: the whole budget at inference, exactly the budget in
  // a hidden layer, and, while training the output layer, up to half the budget of neurons the
  // batch does not share yet.
  void retrieve(const float* h, Local& L, std::vector<std::uint32_t>& out) {
    // One snapshot per batch: libstdc++'s atomic<shared_ptr> locks, and a reference count
    // touched per query would bounce between cores.
    const hashing::TableSet* tables = tables_.get();
    L.buckets.resize(tables->family->num_tables());
    tables->hash_dense(h, L.buckets.data());
    if (!training_) {
      // Random choices (hidden layers' top-up, inference's order of tables) seeded by the
      // input's buckets: the same input gets the same neurons on any thread, run after run.
      std::uint64_t key = seed_;
      for (std::uint32_t b : L.buckets) key = derive_seed(key, b);
      L.sampler.reseed(key);
    }
    hashing::SampleConfig cfg = sample_;
    cfg.budget = training_ ? budget_ / 2 + 64 : budget_;
    L.sampler.sample(tables->tables, L.buckets, always_, cfg, out);
    if (training_) {
      // Drop what the batch already shares (stamp_ is read-only while samples select).
      std::size_t kept = 0;
      for (std::uint32_t j : out)
        if (stamp_[j] != epoch_ && kept < budget_ / 2) out[kept++] = j;
      out.resize(kept);
    }
  }

  // Batch mode: the candidates of every query_every_-th sample, as sample mode would give them,
  // counted over those samples; the budget / 2 retrieved by the most join shared_. The result
  // depends on the batch alone, not on how its samples were spread over threads: each sample's
  // random choices are seeded by its place in the batch, counts are sums, ties are broken by a
  // random order of the neurons seeded by the batch, and the chosen neurons are appended in id
  // order.
  void share_most_retrieved(std::uint64_t batch_index, const BatchActivations& acts) {
    // A stream of seed_ apart from the others (77, 78, 100 + thread, 2^20 | batch).
    const std::uint64_t batch_seed = derive_seed(derive_seed(seed_, 3ull << 40), batch_index);
    const std::uint64_t query_seed = derive_seed(batch_seed, 0),
                        tie_seed = derive_seed(batch_seed, 1);
    for (Local& L : threads_) L.retrieved.clear();
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, acts.batch, 4),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        Local& L = threads_.local();
                        for (std::size_t s = r.begin(); s < r.end(); ++s) {
                          if (s % query_every_ != 0) continue;
                          L.sampler.reseed(derive_seed(query_seed, s));
                          retrieve(acts.row(s), L, L.candidates);
                          L.retrieved.insert(L.retrieved.end(), L.candidates.begin(),
                                             L.candidates.end());
                        }
                      });
    // count_ is all zeros between batches: only the candidates' entries are set, and reset below.
    if (count_.size() != num_neurons_) count_.assign(num_neurons_, 0);
    candidates_.clear();
    for (const Local& L : threads_)
      for (std::uint32_t j : L.retrieved)
        if (count_[j]++ == 0) candidates_.push_back(j);
    const std::size_t wanted = std::min<std::size_t>(budget_ / 2, candidates_.size());
    // Counting sort by count: the candidates retrieved by more than `cut` samples all fit, and
    // the rest of the room goes to those retrieved by exactly `cut`.
    histogram_.assign(acts.batch + 2, 0);
    for (std::uint32_t j : candidates_) ++histogram_[count_[j]];
    std::uint32_t cut = static_cast<std::uint32_t>(acts.batch + 1);
    for (std::size_t above = 0; cut > 0 && above + histogram_[cut] < wanted;)
      above += histogram_[cut--];
    chosen_.clear();
    ties_.clear();
    for (std::uint32_t j : candidates_) {
      if (count_[j] > cut)
        chosen_.push_back(j);
      else if (count_[j] == cut)
        ties_.push_back({derive_seed(tie_seed, j), j});
    }
    const std::size_t room = wanted - chosen_.size();
    std::nth_element(ties_.begin(), ties_.begin() + room, ties_.end());
    for (std::size_t k = 0; k < room; ++k) chosen_.push_back(ties_[k].second);
    std::sort(chosen_.begin(), chosen_.end());
    for (std::uint32_t j : chosen_) {
      stamp_[j] = epoch_;
      shared_.push_back(j);
    }
    for (std::uint32_t j : candidates_) count_[j] = 0;
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
  bool training_ = false, hidden_ = false, batch_negatives_ = false;
  std::uint32_t query_every_ = 1;
  std::vector<std::uint32_t> always_;
  std::vector<std::uint32_t> shared_, stamp_;  // stamp_[j] == epoch_: j is shared this batch
  std::uint32_t epoch_ = 0;
  // Batch mode, reused from batch to batch: per neuron, the samples that retrieved it this batch;
  // the distinct candidates; candidates per count; the ones chosen; and the tied ones by key.
  std::vector<std::uint32_t> count_, candidates_, histogram_, chosen_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ties_;
  std::unique_ptr<LogQCorrection> logq_;
  std::vector<float> corrections_;
  tbb::enumerable_thread_specific<Local> threads_;
};

}  // namespace

std::unique_ptr<OutputSampler> make_lsh_sampler(const NetworkConfig& net, const TrainConfig& train,
                                                const RowsF32& output, bool training,
                                                FirstTables first_tables) {
  if (!training && first_tables != FirstTables::kBuildNow)
    fail("lsh sampler: inference needs its tables built at once");
  const SamplerSpec spec{net.lsh,
                         net.hidden.back(),
                         net.sparsity,
                         net.seed,
                         training ? Role::kOutputTraining : Role::kOutputInference,
                         net.lsh_negatives,
                         net.lsh_query_every,
                         first_tables};
  return std::make_unique<LshSampler>(spec, train, output);
}

std::unique_ptr<OutputSampler> make_inference_lsh_sampler(const NetworkConfig& net,
                                                          const TrainConfig& train,
                                                          const RowsF32& output,
                                                          std::span<const float> bias) {
  const SamplerSpec spec{net.lsh, net.hidden.back(), net.sparsity, net.seed,
                         Role::kOutputInference};
  auto sampler = std::make_unique<LshSampler>(spec, train, output);
  const std::uint32_t budget = sampling_budget(output.rows, net.sparsity);
  const std::size_t m = std::min<std::size_t>(
      bias.size(), static_cast<std::size_t>(std::llround(budget * net.prior_fraction)));
  if (m) {
    std::vector<std::uint32_t> ids(bias.size());
    for (std::uint32_t j = 0; j < ids.size(); ++j) ids[j] = j;
    std::partial_sort(ids.begin(), ids.begin() + m, ids.end(),
                      [&](std::uint32_t a, std::uint32_t b) { return bias[a] > bias[b]; });
    ids.resize(m);
    sampler->set_always_include(std::move(ids));
  }
  return sampler;
}

std::unique_ptr<OutputSampler> make_hidden_sampler(const NetworkConfig& net, std::size_t l,
                                                   const TrainConfig& train,
                                                   const ParamMatrix& weights) {
  const HiddenSampling& h = net.hidden_sampling.at(l);
  const SamplerSpec spec{h.lsh, net.hidden.at(l - 1), h.sparsity, derive_seed(net.seed, 500 + l),
                         Role::kHidden};
  return std::make_unique<LshSampler>(spec, train, rows_f32(weights));
}

}  // namespace glide::engine
