// Shared by the native module's files: a model with its lock, and CSR arrays from NumPy viewed
// as the library's batches (no copy: the Python package hands over arrays of the exact dtypes).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <glide/glide.h>

#include <atomic>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>

namespace glide::python {

namespace py = pybind11;

// The model behind a glide.Model. Predictions may run from many Python threads at once (the
// GIL is released); training excludes them (the library requires it). Lock only after
// releasing the GIL: a training callback takes the GIL while the lock is held.
struct PyModel {
  Model model;
  mutable std::shared_mutex mutex;
  std::atomic<std::thread::id> trainer{};  // the thread inside train(); none otherwise

  // True on the training thread while it trains: in fit()'s callback, which must not wait for
  // the lock that thread holds.
  bool in_training() const { return trainer.load() == std::this_thread::get_id(); }
  // Refuses what may not run inside fit()'s callback (it would change or read the model while
  // it trains).
  void refuse_in_training(const char* what) const {
    if (in_training())
      throw Error(std::string("Model.") + what +
                  ": not allowed in fit()'s callback while the model trains (validation= "
                  "evaluates during training; stop with False and call it after fit())");
  }
};

// The arrays of `array` as a span of T, provided it is a 1-d C-contiguous array of exactly T
// (TypeError otherwise, naming `what`; the Python package converts before calling).
template <class T>
std::span<const T> span_of(py::handle object, const char* what) {
  const std::string expected = std::string(what) + ": expected a contiguous 1-d array of " +
                               py::str(py::dtype::of<T>()).cast<std::string>() + ", got ";
  if (!py::isinstance<py::array>(object))
    throw py::type_error(expected + py::str(py::type::of(object)).cast<std::string>());
  const auto array = py::reinterpret_borrow<py::array>(object);
  if (!py::isinstance<py::array_t<T>>(array) || array.ndim() != 1 ||
      !(array.flags() & py::array::c_style))
    throw py::type_error(expected + py::str(array.dtype()).cast<std::string>() + " of " +
                         std::to_string(array.ndim()) + " dimensions");
  return {static_cast<const T*>(array.data()), static_cast<std::size_t>(array.size())};
}

// X = (indptr uint64, indices uint32, data float32) and, unless None,
// Y = (indptr uint64, ids uint32), as one batch. The arrays stay owned by the caller's tuples.
inline SparseBatchView batch_of(const py::tuple& x, const py::object& y) {
  if (x.size() != 3) throw py::type_error("X: expected (indptr, indices, data)");
  SparseBatchView b;
  b.row_offsets = span_of<std::uint64_t>(x[0], "X.indptr");
  b.feature_ids = span_of<std::uint32_t>(x[1], "X.indices");
  b.values = span_of<float>(x[2], "X.data");
  if (!y.is_none()) {
    const auto labels = y.cast<py::tuple>();
    if (labels.size() != 2) throw py::type_error("Y: expected (indptr, label ids)");
    b.label_offsets = span_of<std::uint64_t>(labels[0], "Y.indptr");
    b.label_ids = span_of<std::uint32_t>(labels[1], "Y.ids");
  }
  return b;
}

inline PredictMode mode_of(const std::string& mode) {
  if (mode == "exact") return PredictMode::kExact;
  if (mode == "sampled") return PredictMode::kSampled;
  throw py::value_error("mode must be 'exact' or 'sampled', got '" + mode + "'");
}

// P@1..5, nDCG@1..5, points and seconds as a dict.
py::dict metrics_dict(const Metrics& m);

// Model.train, with the progress bridge (train_binding.cpp).
void bind_training(py::class_<PyModel>& model);

}  // namespace glide::python
