#include "engine/trainer.h"

#include "common/error.h"
#include "common/timing.h"
#include "engine/optimizer_step.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace glide::engine {

Trainer::Trainer(Network& net, const TrainConfig& config, std::unique_ptr<OutputSampler> sampler)
    : net_(net),
      config_(with_network_defaults(config, net.config().wide)),
      sampler_(std::move(sampler)),
      k_(kernels()) {
  validate(config_);
  loss_ = make_loss(net_.config().loss);
  net_.ensure_moments();  // a network loaded for inference has none
  out_ = make_output_ops(net_, config_);
  net_.build_hidden_samplers(config_);  // tables that refresh on this run's schedule
}

void Trainer::update(Optimizer o, float* w, float* m, float* v, const float* g, std::size_t n,
                     const AdamStep& step) const {
  optimizer_step(k_, o, w, m, v, g, n, step);
}

void Trainer::update(float* w, float* m, float* v, const float* g, std::size_t n,
                     const AdamStep& step) const {
  update(config_.optimizer, w, m, v, g, n, step);
}

float* Trainer::thread_grad_buffer(std::size_t floats) {
  ThreadScratch& t = scratch_.local();
  if (t.grad.size() < floats) t.grad = AlignedArray<float>(floats);
  if (t.generation != generation_) {
    std::fill(t.grad.data(), t.grad.data() + floats, 0.0f);
    t.generation = generation_;
  }
  return t.grad.data();
}

// Sums the per-thread buffers used since the last generation bump into `out`.
void Trainer::reduce_grad_buffers(float* out, std::size_t floats) {
  std::fill(out, out + floats, 0.0f);
  for (ThreadScratch& t : scratch_)
    if (t.generation == generation_) k_.axpy(1.0f, t.grad.data(), out, floats);
  ++generation_;
}

void Trainer::select_active(std::span<const std::span<const std::uint32_t>> labels) {
  const std::size_t B = labels.size();
  const std::uint32_t N = net_.num_labels();
  active_.resize(B);
  label_pos_.resize(B);
  std::span<const std::uint32_t> shared;
  if (!sampler_) {  // exact softmax: every neuron is shared by the batch
    if (all_neurons_.size() != N) {
      all_neurons_.resize(N);
      std::iota(all_neurons_.begin(), all_neurons_.end(), 0u);
    }
    shared = all_neurons_;
    for (auto& a : active_) a.clear();
  } else {
    const std::size_t last = acts_.layers.size() - 1;
    sampler_->begin_batch(batches_, labels, {acts_.last(0), acts_.strides[last], B});
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, B, 4),
                      [&](const tbb::blocked_range<std::size_t>& r) {
                        for (std::size_t s = r.begin(); s < r.end(); ++s)
                          sampler_->select(acts_.last(s), active_[s]);
                      });
    shared = sampler_->shared();
  }
  active_views_.assign(active_.begin(), active_.begin() + B);
  pairs_.build(active_views_, shared, N, static_cast<std::uint32_t>(B));
  shared_ = shared;
  // Each sample's labels are shared; their positions in the sample's scoring order (own
  // neurons first, then the shared ones).
  for (std::size_t s = 0; s < B; ++s) {
    auto& pos = label_pos_[s];
    pos.clear();
    const std::uint32_t own = static_cast<std::uint32_t>(active_[s].size());
    for (std::uint32_t y : labels[s]) {
      const std::uint32_t k = pairs_.shared_index(y);
      if (!k) fail("output sampler did not share label " + std::to_string(y));
      if (std::find(pos.begin(), pos.end(), own + k - 1) == pos.end()) pos.push_back(own + k - 1);
    }
  }
}

double Trainer::output_loss(std::span<const std::span<const std::uint32_t>> labels) {
  const std::size_t B = labels.size();
  if (exchange_) return sharded_output_loss(B);
  const float inv_batch = 1.0f / static_cast<float>(B);
  const std::span<const float> corrections =
      sampler_ ? sampler_->shared_corrections() : std::span<const float>{};
  std::vector<double> losses(B, 0.0);
  loss_->batch_gradient({.z = z_.data(),
                         .pairs = &pairs_,
                         .labels = std::span<const std::vector<std::uint32_t>>(label_pos_).first(B),
                         .corrections = corrections},
                        inv_batch, k_, losses);
  double total = 0;
  std::size_t counted = 0;
  for (std::size_t s = 0; s < B; ++s)
    if (!label_pos_[s].empty()) total += losses[s], ++counted;
  return counted ? total / counted : 0.0;
}

void Trainer::backward_output(const AdamStep& step) {
  ParamVector& b = net_.output_bias;
  const std::size_t last = acts_.layers.size() - 1;
  const std::size_t stride = acts_.strides[last], B = pairs_.batch(), dim = net_.last_hidden();
  const auto neurons = pairs_.neurons();
  const std::uint32_t* rows = pairs_.rows();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 64),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      float* dH = thread_grad_buffer(B * stride);
                      std::vector<float>& gw = scratch_.local().gw;
                      gw.resize(dim);
                      for (std::size_t i = r.begin(); i < r.end(); ++i) {
                        if (i + OutputLayerOps::kPrefetchAhead < r.end())
                          out_->prefetch(neurons[i + OutputLayerOps::kPrefetchAhead], true);
                        const std::uint32_t j = neurons[i];
                        const std::uint64_t beg = pairs_.neuron_begin(i),
                                            cnt = pairs_.neuron_begin(i + 1) - beg;
                        const float* coef = z_.data() + beg;
                        out_->backward(j, rows + beg, coef, cnt, dH, gw.data(), net_.step, step);
                        float db = 0;
                        for (std::uint64_t q = 0; q < cnt; ++q) db += coef[q];
                        update(config_.output_optimizer, &b.w[j], &b.m[j], &b.v[j], &db, 1, step);
                      }
                    });
  reduce_grad_buffers(grads_[last].data(), B * stride);
  out_->finish_backward(grads_[last].data());
  if (exchange_) exchange_->sum(std::span<float>(grads_[last].data(), B * stride));
}

void Trainer::forward_wide(std::span<const data::SparseView> inputs) {
  net_.wide.prepare_training();
  wide_batch_.build(inputs, net_.wide.num_features());
  net_.wide.add_scores(wide_batch_, pairs_, z_.data());
}

void Trainer::backward_wide(float lr) {
  net_.wide.train_step(wide_batch_, pairs_, z_.data(), lr, static_cast<float>(config_.eps));
}

// Sampled hidden layer l: only the (sample, neuron) pairs its forward pass computed, neuron by
// neuron; a neuron no sample activated keeps its weights and moments.
void Trainer::backward_sampled_hidden(std::size_t l, const AdamStep& step) {
  ParamMatrix& W = net_.hidden[l - 1];
  ParamVector& b = net_.hidden_bias[l - 1];
  const SampledLayerPairs& sp = acts_.sampled[l];
  const std::size_t B = acts_.batch, stride = acts_.strides[l], pstride = acts_.strides[l - 1];
  const float* Hprev = acts_.layers[l - 1].data();
  const float* dZ = grads_[l].data();
  const auto neurons = sp.pairs.neurons();
  const std::uint32_t* rows = sp.pairs.rows();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 16),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      float* dH = thread_grad_buffer(B * pstride);
                      ThreadScratch& t = scratch_.local();
                      t.gw.resize(W.cols);
                      for (std::size_t i = r.begin(); i < r.end(); ++i) {
                        const std::uint32_t j = neurons[i];
                        const std::uint64_t beg = sp.pairs.neuron_begin(i),
                                            cnt = sp.pairs.neuron_begin(i + 1) - beg;
                        t.buf.resize(cnt);
                        float db = 0;
                        for (std::uint64_t q = 0; q < cnt; ++q)
                          db += t.buf[q] = dZ[rows[beg + q] * stride + j];
                        float* w = W.row(j);
                        k_.backward_rows(w, Hprev, dH, pstride, rows + beg, t.buf.data(), cnt,
                                         W.cols, t.gw.data());
                        update(w, W.m.data() + j * W.stride, W.v.data() + j * W.stride, t.gw.data(),
                               W.cols, step);
                        update(&b.w[j], &b.m[j], &b.v[j], &db, 1, step);
                      }
                    });
  reduce_grad_buffers(grads_[l - 1].data(), B * pstride);
}

// Dense hidden layer l after a sampled layer: its input (and so the input's gradient that matters)
// lives on the previous layer's active neurons only, read and written packed.
void Trainer::backward_after_sampled(std::size_t l, const AdamStep& step) {
  ParamMatrix& W = net_.hidden[l - 1];
  ParamVector& b = net_.hidden_bias[l - 1];
  const SampledLayerPairs& in = acts_.sampled[l - 1];
  const std::size_t B = acts_.batch, stride = acts_.strides[l], pstride = acts_.strides[l - 1];
  const std::size_t packed = in.offsets[B];
  const float* dZ = grads_[l].data();
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 8),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      float* dP = thread_grad_buffer(packed);
                      ThreadScratch& t = scratch_.local();
                      t.gw.resize(W.cols);
                      for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
                        std::fill(t.gw.begin(), t.gw.end(), 0.0f);
                        float db = 0;
                        float* w = W.row(j);
                        for (std::size_t s = 0; s < B; ++s) {
                          const float c = dZ[s * stride + j];
                          if (c == 0) continue;  // the unit was off: no gradient through it
                          db += c;
                          const std::uint64_t beg = in.offsets[s], n = in.offsets[s + 1] - beg;
                          k_.gather_axpy(c, w, in.ids.data() + beg, dP + beg, n);
                          k_.scatter_axpy(c, in.values.data() + beg, in.ids.data() + beg,
                                          t.gw.data(), n);
                        }
                        update(w, W.m.data() + j * W.stride, W.v.data() + j * W.stride, t.gw.data(),
                               W.cols, step);
                        update(&b.w[j], &b.m[j], &b.v[j], &db, 1, step);
                      }
                    });
  packed_grad_.resize(packed);
  reduce_grad_buffers(packed_grad_.data(), packed);
  float* dH = grads_[l - 1].data();
  std::fill(dH, dH + B * pstride, 0.0f);
  for (std::size_t s = 0; s < B; ++s)
    for (std::uint64_t q = in.offsets[s]; q < in.offsets[s + 1]; ++q)
      dH[s * pstride + in.ids[q]] = packed_grad_[q];
}

// Dense hidden layer l >= 1: every sample activates every neuron.
void Trainer::backward_hidden(std::size_t l, const AdamStep& step) {
  if (net_.config().hidden_sampled(l)) return backward_sampled_hidden(l, step);
  if (l >= 2 && net_.config().hidden_sampled(l - 1)) return backward_after_sampled(l, step);
  ParamMatrix& W = net_.hidden[l - 1];
  ParamVector& b = net_.hidden_bias[l - 1];
  const std::size_t B = acts_.batch, stride = acts_.strides[l], pstride = acts_.strides[l - 1];
  const float* Hprev = acts_.layers[l - 1].data();
  const float* dZ = grads_[l].data();
  tbb::parallel_for(tbb::blocked_range<std::uint32_t>(0, W.rows, 8),
                    [&](const tbb::blocked_range<std::uint32_t>& r) {
                      float* dH = thread_grad_buffer(B * pstride);
                      ThreadScratch& t = scratch_.local();
                      t.gw.resize(W.cols);
                      t.buf.resize(B);
                      for (std::uint32_t j = r.begin(); j < r.end(); ++j) {
                        float db = 0;
                        for (std::size_t s = 0; s < B; ++s) db += t.buf[s] = dZ[s * stride + j];
                        float* w = W.row(j);
                        k_.backward_rows(w, Hprev, dH, pstride, all_rows_.data(), t.buf.data(), B,
                                         W.cols, t.gw.data());
                        update(w, W.m.data() + j * W.stride, W.v.data() + j * W.stride, t.gw.data(),
                               W.cols, step);
                        update(&b.w[j], &b.m[j], &b.v[j], &db, 1, step);
                      }
                    });
  reduce_grad_buffers(grads_[l - 1].data(), B * pstride);
}

// Input layer: the batch's features, feature by feature, so each input row is updated once.
void Trainer::backward_input(std::span<const data::SparseView> inputs, const AdamStep& step) {
  ParamMatrix& W = net_.input;
  ParamVector& b = net_.input_bias;
  const std::size_t B = inputs.size(), stride = acts_.strides[0], dim = W.cols;
  const float* dZ = grads_[0].data();
  feature_views_.resize(B);
  for (std::size_t s = 0; s < B; ++s) feature_views_[s] = inputs[s].ids;
  feature_pairs_.build(feature_views_, {}, net_.config().num_features,
                       static_cast<std::uint32_t>(B));
  feature_values_.resize(feature_pairs_.num_pairs());
  for (std::size_t s = 0; s < B; ++s) {
    const auto slots = feature_pairs_.own_slots(s);
    for (std::size_t q = 0; q < slots.size(); ++q) feature_values_[slots[q]] = inputs[s].values[q];
  }
  const auto features = feature_pairs_.neurons();
  const std::uint32_t* rows = feature_pairs_.rows();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, features.size(), 64),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      std::vector<float>& gw = scratch_.local().gw;
                      gw.resize(dim);
                      for (std::size_t i = r.begin(); i < r.end(); ++i) {
                        const std::uint32_t f = features[i];
                        const std::uint64_t beg = feature_pairs_.neuron_begin(i),
                                            cnt = feature_pairs_.neuron_begin(i + 1) - beg;
                        k_.grad_rows(dZ, stride, rows + beg, feature_values_.data() + beg, cnt, dim,
                                     gw.data());
                        update(W.row(f), W.m.data() + f * W.stride, W.v.data() + f * W.stride,
                               gw.data(), dim, step);
                      }
                    });
  std::vector<float> db(dim, 0.0f);
  for (std::size_t s = 0; s < B; ++s) k_.axpy(1.0f, dZ + s * stride, db.data(), dim);
  update(b.w.data(), b.m.data(), b.v.data(), db.data(), dim, step);
}

BatchResult Trainer::train_batch(std::span<const data::SparseView> inputs,
                                 std::span<const std::span<const std::uint32_t>> labels) {
  const std::size_t B = inputs.size();
  BatchResult result;
  result.samples = B;
  if (B == 0) return result;
  const auto& hidden = net_.config().hidden;

  auto t = Clock::now();
  for (auto& h : net_.hidden_samplers)
    if (h) h->begin_batch(batches_, {}, {});  // this batch's snapshot of the tables
  net_.forward_hidden(inputs, acts_, k_);
  times_.forward += seconds_since(t);

  t = Clock::now();
  select_active(labels);
  times_.select += seconds_since(t);

  // Output logits, neuron by neuron.
  t = Clock::now();
  const std::size_t last = hidden.size() - 1;
  const float* H = acts_.layers[last].data();
  const std::size_t stride = acts_.strides[last];
  z_.resize(pairs_.num_pairs());
  out_->prepare(H, stride, B);
  const auto neurons = pairs_.neurons();
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, neurons.size(), 64),
                    [&](const tbb::blocked_range<std::size_t>& r) {
                      for (std::size_t i = r.begin(); i < r.end(); ++i) {
                        if (i + OutputLayerOps::kPrefetchAhead < r.end())
                          out_->prefetch(neurons[i + OutputLayerOps::kPrefetchAhead], false);
                        const std::uint32_t j = neurons[i];
                        const std::uint64_t beg = pairs_.neuron_begin(i),
                                            cnt = pairs_.neuron_begin(i + 1) - beg;
                        float* z = z_.data() + beg;
                        out_->forward(j, pairs_.rows() + beg, cnt, z);
                        const float bj = net_.output_bias.w[j];
                        for (std::uint64_t q = 0; q < cnt; ++q) z[q] += bj;
                      }
                    });
  out_->finish_forward();
  if (!net_.wide.empty()) forward_wide(inputs);
  times_.forward += seconds_since(t);

  t = Clock::now();
  result.loss = output_loss(labels);
  times_.loss += seconds_since(t);
  result.active_pairs = pairs_.num_pairs();
  result.distinct_active = neurons.size();

  // Backward, last layer first, each row updated right after its gradient is known.
  t = Clock::now();
  ++net_.step;
  auto step_at = [&](double lr) {
    return AdamStep::at(static_cast<float>(lr * lr_scale_), static_cast<float>(config_.beta1),
                        static_cast<float>(config_.beta2), static_cast<float>(config_.eps),
                        net_.step);
  };
  const AdamStep step = step_at(config_.lr);
  AdamStep output_step = step_at(config_.output_lr);
  output_step.eps = static_cast<float>(config_.output_eps);
  if (grads_.size() != hidden.size() || grads_[0].size() < B * acts_.strides[0]) {
    grads_.clear();
    for (std::size_t l = 0; l < hidden.size(); ++l) grads_.emplace_back(B * acts_.strides[l]);
  }
  all_rows_.resize(B);
  std::iota(all_rows_.begin(), all_rows_.end(), 0u);
  ++generation_;
  if (!net_.wide.empty()) backward_wide(static_cast<float>(config_.wide_lr * lr_scale_));
  backward_output(output_step);
  for (std::size_t l = last + 1; l-- > 0;) {
    // Through the ReLU: no gradient where the unit was off.
    float* g = grads_[l].data();
    for (std::size_t s = 0; s < B; ++s) {
      const float* h = acts_.row(l, s);
      for (std::size_t i = 0; i < hidden[l]; ++i)
        if (h[i] <= 0) g[s * acts_.strides[l] + i] = 0;
    }
    if (l > 0)
      backward_hidden(l, step);
    else
      backward_input(inputs, step);
  }
  times_.backward += seconds_since(t);

  t = Clock::now();
  if (sampler_) sampler_->after_batch(net_.output->rows_f32(), batches_);
  for (std::size_t l = 1; l < net_.hidden_samplers.size(); ++l)
    if (auto& h = net_.hidden_samplers[l]) h->after_batch(rows_f32(net_.hidden[l - 1]), batches_);
  times_.refresh += seconds_since(t);
  ++batches_;
  return result;
}

}  // namespace glide::engine
