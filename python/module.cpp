// The native part of the Python module, glide._glide: the library's Model over NumPy arrays,
// with the GIL released while it works. Argument conversion and checks that Python does best
// (scipy matrices, label lists, dtypes) live in the Python package (python/glide/); this file
// takes arrays of the exact dtypes and refuses anything else.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "binding.h"

namespace glide::python {

namespace {

// A vector handed to NumPy without a copy: the array owns it through a capsule.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule free_it(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(owned->size())}, owned->data(), free_it);
}

// Top-k of every row as (labels int64 [n, k], scores float32 [n, k], scored uint32 [n]); rows
// with fewer than k labels are padded with label -1 and score 0.
py::tuple predict(const PyModel& m, const py::tuple& x, std::uint32_t k, const std::string& mode,
                  std::uint32_t probes) {
  m.refuse_in_training("predict");
  const SparseBatchView batch = batch_of(x, py::none());
  const PredictOptions options{.mode = mode_of(mode), .probes = probes};
  const std::size_t n = batch.rows();
  py::array_t<std::int64_t> labels({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
  py::array_t<float> scores({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
  py::array_t<std::uint32_t> scored({static_cast<py::ssize_t>(n)});
  std::int64_t* label_out = labels.mutable_data();
  float* score_out = scores.mutable_data();
  std::uint32_t* scored_out = scored.mutable_data();
  {
    py::gil_scoped_release release;
    std::shared_lock lock(m.mutex);
    const std::vector<Prediction> top = m.model.predict(batch, k, options);
    std::fill(label_out, label_out + n * k, -1);
    std::fill(score_out, score_out + n * k, 0.0f);
    for (std::size_t r = 0; r < n; ++r) {
      std::copy(top[r].labels.begin(), top[r].labels.end(), label_out + r * k);
      std::copy(top[r].scores.begin(), top[r].scores.end(), score_out + r * k);
      scored_out[r] = top[r].scored;
    }
  }
  return py::make_tuple(labels, scores, scored);
}

// Every label's score (exact mode) as a dense float32 [n, num_labels] array, computed a block
// of rows at a time so that the library's per-row lists stay small.
py::array_t<float> predict_all(const PyModel& m, const py::tuple& x) {
  m.refuse_in_training("predict_proba");
  const SparseBatchView batch = batch_of(x, py::none());
  const std::size_t n = batch.rows(), labels = m.model.num_labels();
  py::array_t<float> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(labels)});
  float* dense = out.mutable_data();
  {
    py::gil_scoped_release release;
    std::shared_lock lock(m.mutex);
    check_batch(batch, m.model.num_features(), m.model.num_labels(), false, "X");
    std::fill(dense, dense + n * labels, 0.0f);
    constexpr std::size_t kBlock = 256;
    for (std::size_t first = 0; first < n; first += kBlock) {
      const std::size_t last = std::min(n, first + kBlock);
      // The library wants offsets from 0: rebase the block's, view its ids and values.
      const auto rows = batch.row_offsets.subspan(first, last - first + 1);
      std::vector<std::uint64_t> offsets(rows.begin(), rows.end());
      const std::uint64_t base = offsets.front();
      for (auto& o : offsets) o -= base;
      SparseBatchView block;
      block.row_offsets = offsets;
      block.feature_ids = batch.feature_ids.subspan(base, offsets.back());
      block.values = batch.values.subspan(base, offsets.back());
      const std::vector<Prediction> all =
          m.model.predict(block, static_cast<std::uint32_t>(labels), PredictMode::kExact);
      for (std::size_t r = 0; r < all.size(); ++r)
        for (std::size_t j = 0; j < all[r].labels.size(); ++j)
          dense[(first + r) * labels + all[r].labels[j]] = all[r].scores[j];
    }
  }
  return out;
}

// With `y_train` (the training rows' labels, (indptr, ids)): PSP@1..5 too, from their counts.
py::dict evaluate(const PyModel& m, const py::tuple& x, const py::tuple& y, const std::string& mode,
                  std::uint32_t probes, const py::object& y_train) {
  m.refuse_in_training("evaluate");
  const SparseBatchView batch = batch_of(x, y);
  const PredictOptions options{.mode = mode_of(mode), .probes = probes};
  // The training rows as a batch of labels alone: no features.
  SparseBatchView train;
  std::vector<std::uint64_t> no_features;
  if (!y_train.is_none()) {
    const auto labels = y_train.cast<py::tuple>();
    if (labels.size() != 2) throw py::type_error("Y_train: expected (indptr, label ids)");
    train.label_offsets = span_of<std::uint64_t>(labels[0], "Y_train.indptr");
    train.label_ids = span_of<std::uint32_t>(labels[1], "Y_train.ids");
    no_features.assign(train.label_offsets.size(), 0);
    train.row_offsets = no_features;
  }
  Metrics metrics;
  {
    py::gil_scoped_release release;
    std::shared_lock lock(m.mutex);
    metrics = y_train.is_none() ? m.model.evaluate(batch, options)
                                : m.model.evaluate(batch, train, options);
  }
  return metrics_dict(metrics);
}

void check(const py::tuple& x, const py::object& y, std::uint32_t num_features,
           std::uint32_t num_labels, const std::string& where) {
  const SparseBatchView batch = batch_of(x, y);
  py::gil_scoped_release release;
  check_batch(batch, num_features, num_labels, !y.is_none(), where);
}

// A dataset file as NumPy CSR arrays: ((indptr, indices, data), (label indptr, label ids),
// num_features, num_labels), the dimensions those the file declares (0 when it declares none).
py::tuple read(const std::string& path) {
  SparseBatch b;
  {
    py::gil_scoped_release release;
    b = read_dataset(path);
  }
  return py::make_tuple(
      py::make_tuple(to_numpy(std::move(b.row_offsets)), to_numpy(std::move(b.feature_ids)),
                     to_numpy(std::move(b.values))),
      py::make_tuple(to_numpy(std::move(b.label_offsets)), to_numpy(std::move(b.label_ids))),
      b.num_features, b.num_labels);
}

}  // namespace

template <class F>
auto unlocked(F&& f) {
  py::gil_scoped_release release;
  return f();
}

// f(model) with the GIL released and the model shared-locked (accessors: training changes
// what they read); in fit()'s callback, on the training thread, without the lock it holds.
template <class F>
auto reading(const PyModel& p, F&& f) {
  if (p.in_training()) return f(p.model);
  py::gil_scoped_release release;
  std::shared_lock lock(p.mutex);
  return f(p.model);
}

namespace {}  // namespace

py::dict metrics_dict(const Metrics& m) {
  py::dict d;
  for (int k = 1; k <= 5; ++k) d[("P@" + std::to_string(k)).c_str()] = m.p_at(k);
  for (int k = 1; k <= 5; ++k) d[("nDCG@" + std::to_string(k)).c_str()] = m.ndcg_at(k);
  if (m.has_psp)
    for (int k = 1; k <= 5; ++k) d[("PSP@" + std::to_string(k)).c_str()] = m.psp_at(k);
  d["points"] = m.points;
  d["seconds"] = m.seconds;
  return d;
}

}  // namespace glide::python

PYBIND11_MODULE(_glide, m) {
  namespace py = pybind11;
  using glide::Model;
  using glide::python::PyModel;
  using glide::python::reading;
  m.doc() = "The native part of the glide module (use the glide package, not this).";
  py::register_exception<glide::Error>(m, "Error", PyExc_RuntimeError);
  m.def("version", [] { return std::string(glide::version()); });
  m.def("default_config_json", &glide::default_config_json);
  m.def("read_dataset", &glide::python::read, py::arg("path"));
  m.def("check_batch", &glide::python::check, py::arg("X"), py::arg("Y"), py::arg("num_features"),
        py::arg("num_labels"), py::arg("where"));

  py::class_<PyModel> model(m, "Model");
  model
      .def_static("create_from_json",
                  [](const std::string& json) {
                    auto p = std::make_unique<PyModel>();
                    p->model = glide::python::unlocked(
                        [&] { return glide::Model::create_from_json(json); });
                    return p;
                  })
      .def_static(
          "load",
          [](const std::string& path, bool optimizer_state) {
            auto p = std::make_unique<PyModel>();
            p->model =
                glide::python::unlocked([&] { return glide::Model::load(path, optimizer_state); });
            return p;
          },
          py::arg("path"), py::arg("optimizer_state") = true)
      .def(
          "save",
          [](const PyModel& p, const std::string& path, bool optimizer_state) {
            p.refuse_in_training("save");
            py::gil_scoped_release release;
            std::shared_lock lock(p.mutex);
            p.model.save(path, optimizer_state);
          },
          py::arg("path"), py::arg("optimizer_state") = true)
      .def(
          "quantize",
          [](PyModel& p, const std::string& precision, const std::string& granularity) {
            p.refuse_in_training("quantize");
            py::gil_scoped_release release;
            std::unique_lock lock(p.mutex);
            p.model.quantize(precision, granularity);
          },
          py::arg("precision"), py::arg("granularity"))
      .def("build_index",
           [](PyModel& p, const py::tuple& x, const py::tuple& y) {
             p.refuse_in_training("build_index");
             const glide::SparseBatchView batch = glide::python::batch_of(x, y);
             py::gil_scoped_release release;
             std::unique_lock lock(p.mutex);
             p.model.build_index(batch);
           })
      .def("predict", &glide::python::predict, py::arg("X"), py::arg("k"), py::arg("mode"),
           py::arg("probes"))
      .def("predict_all", &glide::python::predict_all, py::arg("X"))
      .def("evaluate", &glide::python::evaluate, py::arg("X"), py::arg("Y"), py::arg("mode"),
           py::arg("probes"), py::arg("Y_train") = py::none())
      .def_property_readonly("num_features",
                             [](const PyModel& p) {
                               return reading(p, [](const Model& m) { return m.num_features(); });
                             })
      .def_property_readonly("num_labels",
                             [](const PyModel& p) {
                               return reading(p, [](const Model& m) { return m.num_labels(); });
                             })
      .def_property_readonly(
          "precision",
          [](const PyModel& p) { return reading(p, [](const Model& m) { return m.precision(); }); })
      .def_property_readonly(
          "has_index",
          [](const PyModel& p) { return reading(p, [](const Model& m) { return m.has_index(); }); })
      .def_property_readonly("samples_trained",
                             [](const PyModel& p) {
                               return reading(p,
                                              [](const Model& m) { return m.samples_trained(); });
                             })
      .def("config_json", [](const PyModel& p) {
        return reading(p, [](const Model& m) { return m.config_json(); });
      });
  glide::python::bind_training(model);
}
