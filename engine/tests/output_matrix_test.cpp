// OutputMatrix (engine/output_matrix.h) in each storage against a reference computed from the
// fp32 rows it was made from: the fp32 view, scoring, copies, and the model-file sections.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "common/error.h"
#include "engine/checkpoint.h"
#include "engine/kernels_bf16.h"
#include "engine/network.h"
#include "engine/output_weights.h"
#include "engine/tests/output_storage.h"
#include "engine/tests/random_vectors.h"
#include "engine/tests/small_problem.h"
#include "quant/quantize.h"

using namespace glide;
using namespace glide::engine;

namespace {

constexpr std::uint32_t kRows = 300, kCols = 40;

ParamMatrix random_rows(std::uint64_t seed) {
  ParamMatrix w(kRows, kCols);
  Rng rng(seed);
  for (std::uint32_t j = 0; j < kRows; ++j) {
    const auto v = testing::randoms(kCols, rng);
    std::copy(v.begin(), v.end(), w.row(j));
    const auto m = testing::randoms(kCols, rng, 0, 1);
    std::copy(m.begin(), m.end(), w.m.data() + j * w.stride);
    std::copy(m.begin(), m.end(), w.v.data() + j * w.stride);
  }
  return w;
}

// What each storage should hold of weight x: itself, its bf16 rounding, or its s8 value x scale.
std::vector<float> expected_rows(const ParamMatrix& w, const OutputStorage& s) {
  std::vector<float> out(std::size_t{w.rows} * w.cols);
  if (s.precision == Precision::kInt8) {
    std::vector<std::int8_t> q(std::size_t{w.rows} * w.cols);
    std::vector<float> scale(w.rows);
    quant::quantize_rows_s8(w.w.data(), w.rows, w.cols, w.stride, s.granularity, q.data(), w.cols,
                            scale.data());
    quant::dequantize_rows_s8(q.data(), w.cols, scale.data(), w.rows, w.cols, out.data(), w.cols);
    return out;
  }
  for (std::uint32_t j = 0; j < w.rows; ++j)
    for (std::uint32_t c = 0; c < w.cols; ++c) {
      const float x = w.row(j)[c];
      out[j * w.cols + c] = s.precision == Precision::kBF16 ? bf16_to_f32(f32_to_bf16(x)) : x;
    }
  return out;
}

const OutputStorage kStorages[] = {
    {.precision = Precision::kF32},
    {.precision = Precision::kBF16},
    {.precision = Precision::kBF16, .f32_moments = true},
    {.precision = Precision::kInt8, .granularity = quant::Granularity::kRow},
    {.precision = Precision::kInt8, .granularity = quant::Granularity::kTensor},
};

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("each storage's fp32 view and scores match the rows it was made from") {
  for (const OutputStorage& s : kStorages) {
    CAPTURE(precision_name(s.precision));
    CAPTURE(s.f32_moments);
    const ParamMatrix w = random_rows(7);
    const std::vector<float> ref = expected_rows(w, s);
    const auto m = make_output_matrix(w, s);
    REQUIRE(m->precision() == s.precision);
    REQUIRE(m->rows() == kRows);
    REQUIRE(m->cols() == kCols);
    const ParamMatrix f = m->to_f32();
    const RowsF32 view = m->rows_f32();
    REQUIRE(view.rows == kRows);
    std::vector<float> buf(kCols);
    for (std::uint32_t j = 0; j < kRows; ++j) {
      const float* a = m->row_f32(j, buf.data());
      const float* b = view.row(j);
      for (std::uint32_t c = 0; c < kCols; ++c) {
        CHECK(a[c] == ref[j * kCols + c]);
        CHECK(b[c] == ref[j * kCols + c]);
        CHECK(f.row(j)[c] == ref[j * kCols + c]);
      }
    }
    // Scores: the dot products of the expected rows with the activations, plus the bias
    // (int8 also quantizes the activations: a looser bound), over batches scored row by row and
    // as one product (fp32 and bf16 from 64 samples), a block from row 0 and one from row 3.
    Rng rng(11);
    for (const std::size_t B : {5u, 70u}) {
      CAPTURE(B);
      const auto H = testing::randoms(B * padded(kCols), rng, 0, 1);
      const auto bias = testing::randoms(kRows, rng);
      ScorerBatch batch;
      m->prepare(H.data(), padded(kCols), B, bias.data(), batch);
      std::vector<std::uint32_t> ids(kRows);
      for (std::uint32_t j = 0; j < kRows; ++j) ids[j] = j;
      // fp32 and bf16 within 1e-4 of the terms' sizes (AMX tiles' products of split operands
      // are within 3 x 2^-16 of each: tests/kernel_levels_test.cpp), int8 of the score's.
      const auto close = [&](double got, std::size_t i, std::uint32_t j) {
        double z = bias[j], size = std::fabs(bias[j]);
        for (std::uint32_t c = 0; c < kCols; ++c) {
          const double t = double{ref[j * kCols + c]} * H[i * padded(kCols) + c];
          z += t;
          size += std::fabs(t);
        }
        return s.precision == Precision::kInt8 ? std::fabs(got - z) <= 0.05 * (1 + std::fabs(z))
                                               : std::fabs(got - z) <= 1e-4 * (1 + size);
      };
      for (const std::uint32_t j0 : {0u, 3u}) {
        const std::uint32_t n = kRows - j0;
        const std::size_t ld = n + 5;
        std::vector<float> block(B * ld, -7.0f);
        m->score_block(batch, j0, n, block.data(), ld);
        for (std::size_t i = 0; i < B; ++i)
          for (std::uint32_t q = 0; q < ld; ++q) {
            if (q >= n) {
              CHECK(block[i * ld + q] == -7.0f);  // past the block: untouched
              continue;
            }
            CHECK(close(block[i * ld + q], i, j0 + q));
          }
      }
      std::vector<float> one(kRows);
      for (std::size_t i = 0; i < B; ++i) {
        m->score_rows(batch, i, ids.data(), kRows, one.data());
        for (std::uint32_t j = 0; j < kRows; ++j) CHECK(close(one[j], i, j));
      }
    }
  }
}

TEST_CASE("bf16 rows and moments go through fp32 and back bit for bit") {
  for (const bool f32_moments : {false, true}) {
    CAPTURE(f32_moments);
    const OutputStorage s{.precision = Precision::kBF16, .f32_moments = f32_moments};
    const auto a = make_output_matrix(random_rows(3), s);
    const Bf16Rows ra = dynamic_cast<const Bf16OutputMatrix&>(*a).storage();
    REQUIRE(a->holds(s));
    CHECK(!a->holds({.precision = Precision::kBF16, .f32_moments = !f32_moments}));
    CHECK(!a->holds({.precision = Precision::kF32}));
    const auto b = make_output_matrix(a->release_as_f32(), s);
    const Bf16Rows& rb = dynamic_cast<const Bf16OutputMatrix&>(*b).storage();
    CHECK(a->rows() == 0);  // released
    const auto same = [](const auto& x, const auto& y) {
      return std::equal(x.begin(), x.end(), y.begin(), y.end());
    };
    CHECK(!ra.w.empty());
    CHECK(ra.m.empty() == f32_moments);
    CHECK(same(ra.w, rb.w));
    CHECK(same(ra.m, rb.m));
    CHECK(same(ra.v, rb.v));
    CHECK(same(ra.mf, rb.mf));
    CHECK(same(ra.vf, rb.vf));
  }
}

TEST_CASE("a copied network owns its fp32 rows; int8 rows are shared and cannot be trained") {
  const NetworkConfig nc = [] {
    NetworkConfig c;
    c.num_features = 50;
    c.num_labels = 120;
    c.hidden = {16};
    return c;
  }();
  Network a(nc);
  Network b = a;
  REQUIRE(b.output.get() != a.output.get());
  testing::f32_rows(a).row(3)[2] += 1.0f;
  CHECK(testing::f32_rows(b).row(3)[2] + 1.0f == testing::f32_rows(a).row(3)[2]);
  quantize_output(a, quant::Granularity::kRow);
  const Network c = a;
  CHECK(&testing::int8_rows(c) == &testing::int8_rows(a));
  CHECK(!c.output->trainable());
  CHECK_THROWS_AS(make_output_ops(a, TrainConfig{}), Error);
}

TEST_CASE("a model file saved, loaded and saved again is the same bytes in every storage") {
  testing::SmallProblem p(0.2);
  for (const OutputStorage& s : kStorages) {
    CAPTURE(precision_name(s.precision));
    CAPTURE(s.f32_moments);
    Network net(p.config.net);
    net.output = make_output_matrix(net.output->release_as_f32(), s);
    const std::string a = testing::temp_path("glide_output_matrix", "a.glide");
    const std::string b = testing::temp_path("glide_output_matrix", "b.glide");
    save_model(a, net, p.config, {100, 2});
    const LoadedModel m = load_model(a);
    CHECK(m.has_optimizer_state == (s.precision != Precision::kInt8));
    CHECK(m.net->output->precision() == s.precision);
    save_model(b, *m.net, m.config, m.state);
    const auto x = file_bytes(a), y = file_bytes(b);
    CHECK(!x.empty());
    CHECK(x == y);
  }
}
