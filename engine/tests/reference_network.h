// A tiny batch and a double-precision dense reference of a network's loss, for the training
// step's finite-difference tests (trainer_test, sampled_hidden_test).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

#include "data/dataset.h"
#include "engine/network.h"
#include "engine/tests/output_storage.h"
#include "engine/trainer.h"

namespace glide::engine::testing {

struct Batch {
  std::vector<std::vector<std::uint32_t>> ids, labels;
  std::vector<std::vector<float>> vals;
  std::vector<data::SparseView> inputs;
  std::vector<std::span<const std::uint32_t>> label_views;
  void add(std::vector<std::uint32_t> i, std::vector<float> v, std::vector<std::uint32_t> y) {
    ids.push_back(std::move(i));
    vals.push_back(std::move(v));
    labels.push_back(std::move(y));
  }
  void finish() {
    inputs.clear();
    label_views.clear();
    for (std::size_t s = 0; s < ids.size(); ++s) {
      inputs.push_back({ids[s], vals[s]});
      label_views.push_back(labels[s]);
    }
  }
};

// Every trainable scalar of a network, addressable by index, for perturbation.
inline std::vector<float*> parameters(Network& net) {
  std::vector<float*> p;
  auto add_matrix = [&](ParamMatrix& m) {
    for (std::uint32_t r = 0; r < m.rows; ++r)
      for (std::uint32_t c = 0; c < m.cols; ++c) p.push_back(m.row(r) + c);
  };
  add_matrix(net.input);
  for (std::uint32_t i = 0; i < net.config().hidden[0]; ++i) p.push_back(&net.input_bias.w[i]);
  for (std::size_t l = 0; l < net.hidden.size(); ++l) {
    add_matrix(net.hidden[l]);
    for (std::uint32_t i = 0; i < net.hidden[l].rows; ++i) p.push_back(&net.hidden_bias[l].w[i]);
  }
  add_matrix(f32_rows(net));
  for (std::uint32_t i = 0; i < net.num_labels(); ++i) p.push_back(&net.output_bias.w[i]);
  return p;
}

// Which neurons each sampled hidden layer computes for each sample: masks[l][s], empty for a dense
// layer l. The reference forces the others to zero, as the sampled layer does.
using ActiveMasks = std::vector<std::vector<std::vector<std::uint32_t>>>;

// The mean loss of the batch, computed densely in double precision from the float weights.
// `kink_distance`: the smallest |pre-activation| of a computed hidden neuron (finite differences
// are wrong across a ReLU kink).
inline double reference_loss(const Network& net, const Batch& b, double* kink_distance = nullptr,
                             const ActiveMasks& masks = {}) {
  double nearest = 1e300;
  const auto& hs = net.config().hidden;
  double total = 0;
  for (std::size_t s = 0; s < b.ids.size(); ++s) {
    std::vector<double> h(hs[0]);
    for (std::uint32_t i = 0; i < hs[0]; ++i) {
      double a = net.input_bias.w[i];
      for (std::size_t q = 0; q < b.ids[s].size(); ++q)
        a += b.vals[s][q] * net.input.row(b.ids[s][q])[i];
      h[i] = a > 0 ? a : 0;
    }
    for (std::size_t l = 0; l < net.hidden.size(); ++l) {
      std::vector<double> next(hs[l + 1]);
      const bool masked = l + 1 < masks.size() && !masks[l + 1].empty();
      for (std::uint32_t j = 0; j < hs[l + 1]; ++j) {
        if (masked) {
          const auto& on = masks[l + 1][s];
          if (std::find(on.begin(), on.end(), j) == on.end()) continue;  // stays 0
        }
        double a = net.hidden_bias[l].w[j];
        for (std::uint32_t i = 0; i < hs[l]; ++i) a += net.hidden[l].row(j)[i] * h[i];
        nearest = std::min(nearest, std::fabs(a));
        next[j] = a > 0 ? a : 0;
      }
      h = next;
    }
    std::vector<double> z(net.num_labels());
    for (std::uint32_t j = 0; j < net.num_labels(); ++j) {
      z[j] = net.output_bias.w[j];
      for (std::size_t i = 0; i < h.size(); ++i) z[j] += f32_rows(net).row(j)[i] * h[i];
    }
    const auto& y = b.labels[s];
    if (net.config().loss == LossKind::kSoftmax) {
      double mx = z[0], sum = 0;
      for (double v : z) mx = std::max(mx, v);
      for (double v : z) sum += std::exp(v - mx);
      for (std::uint32_t l : y) total -= (z[l] - mx - std::log(sum)) / y.size();
    } else {
      for (std::uint32_t j = 0; j < z.size(); ++j) {
        const bool pos = std::find(y.begin(), y.end(), j) != y.end();
        const double p = 1 / (1 + std::exp(-z[j]));
        total -= pos ? std::log(p) : std::log(1 - p);
      }
    }
  }
  if (kink_distance) *kink_distance = nearest;
  return total / b.ids.size();
}

inline Batch tiny_batch() {
  Batch b;
  b.add({0, 3, 7}, {1.0f, 0.5f, 2.0f}, {2});
  b.add({1, 7, 11}, {0.3f, 1.5f, 1.0f}, {4, 8});
  b.add({5}, {1.2f}, {0});
  b.add({2, 3, 9, 10}, {0.7f, 0.2f, 1.1f, 0.4f}, {8, 3});
  b.finish();
  return b;
}

// Central differences (step h) of reference_loss for every parameter, then one SGD step with
// lr 1 through a Trainer (dense output layer): each weight's change must equal its numeric
// gradient. Returns the step's reported loss and sets `with_gradient` to the number of
// parameters whose gradient is not negligible, so callers can check the test is not vacuous.
inline double check_step_against_finite_differences(Network& net, const Batch& b, float h,
                                                    const ActiveMasks& masks, int& with_gradient) {
  std::vector<float*> params = parameters(net);
  std::vector<double> numeric(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const float saved = *params[i];
    *params[i] = saved + h;
    const double up = reference_loss(net, b, nullptr, masks);
    *params[i] = saved - h;
    const double down = reference_loss(net, b, nullptr, masks);
    *params[i] = saved;
    numeric[i] = (up - down) / (2.0 * h);
  }
  std::vector<float> before(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) before[i] = *params[i];
  TrainConfig tc;
  tc.optimizer = tc.output_optimizer = Optimizer::kSgd;
  tc.lr = tc.output_lr = 1.0;         // so the weight change is the gradient itself
  Trainer trainer(net, tc, nullptr);  // sampled layers: the same tables from the same weights
  const BatchResult r = trainer.train_batch(b.inputs, b.label_views);
  with_gradient = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double analytic = before[i] - *params[i];
    INFO("parameter " << i);
    CHECK(analytic == doctest::Approx(numeric[i]).epsilon(1e-2).scale(1e-3));
    with_gradient += std::fabs(numeric[i]) > 1e-4;
  }
  return r.loss;
}

}  // namespace glide::engine::testing
