// Model.train for Python: the library's train() with the GIL released, and a progress bridge
// that takes the GIL only a few times a second to check for Ctrl-C (PyErr_CheckSignals) and to
// call the Python hook. An exception there (KeyboardInterrupt, or one the hook raised) stops
// training after the current batch, like a callback returning False, and is raised again once
// train() has returned: the model is left whole, with the updates made so far.
#include <chrono>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>

#include "binding.h"

namespace glide::python {

namespace {

// The counts a progress report and the final summary share.
template <class Counts>
py::dict counts_dict(const Counts& c) {
  py::dict d;
  d["samples"] = c.samples;
  d["batches"] = c.batches;
  d["seconds"] = c.seconds;
  d["eval_seconds"] = c.eval_seconds;
  d["loss"] = c.loss;
  d["samples_per_second"] = c.samples_per_second;
  return d;
}

py::dict progress_dict(const TrainProgress& p) {
  py::dict d = counts_dict(p);
  d["epoch"] = p.epoch;
  d["eta_seconds"] = p.eta_seconds;
  d["eval"] = p.has_eval ? py::object(metrics_dict(p.eval)) : py::object(py::none());
  d["validation"] =
      p.has_validation ? py::object(metrics_dict(p.validation)) : py::object(py::none());
  d["best"] = p.best;
  return d;
}

py::dict result_dict(const TrainResult& r) {
  py::dict d = counts_dict(r);
  d["stopped"] = r.stopped;
  d["setup_seconds"] = r.setup_seconds;
  if (r.has_validation) {
    d["best_validation"] = metrics_dict(r.best_validation);
    d["best_samples"] = r.best_samples;
    d["best_epoch"] = r.best_epoch;
    d["patience_stopped"] = r.patience_stopped;
  }
  return d;
}

// Runs on the training thread (the caller's, with the GIL released) after every batch.
class ProgressBridge {
 public:
  ProgressBridge(py::object hook, double interval_seconds)
      : hook_(std::move(hook)), interval_(interval_seconds) {}

  bool operator()(const TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!p.has_eval && !p.has_validation && called_ && now - last_ < interval_) return true;
    called_ = true;
    last_ = now;
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!hook_.is_none() && hook_(progress_dict(p)).ptr() == Py_False) return false;
    } catch (py::error_already_set& e) {
      pending_ = std::move(e);
      return false;
    }
    return true;
  }

  // Raises what stopped training, if anything did (with the GIL held).
  void raise_pending() {
    if (pending_) {
      py::error_already_set e = std::move(*pending_);
      pending_.reset();
      throw e;
    }
  }

 private:
  py::object hook_;
  std::chrono::duration<double> interval_;
  bool called_ = false;
  std::chrono::steady_clock::time_point last_;
  std::optional<py::error_already_set> pending_;
};

std::string mode_name(PredictMode m) {
  return m == PredictMode::kSampled ? "sampled" : "exact";
}

}  // namespace

void bind_training(py::class_<PyModel>& model) {
  py::class_<TrainOptions>(model, "TrainOptions")
      .def(py::init<>())
      .def_readwrite("optimizer", &TrainOptions::optimizer)
      .def_readwrite("lr", &TrainOptions::lr)
      .def_readwrite("output_optimizer", &TrainOptions::output_optimizer)
      .def_readwrite("output_lr", &TrainOptions::output_lr)
      .def_readwrite("output_eps", &TrainOptions::output_eps)
      .def_readwrite("wide_lr", &TrainOptions::wide_lr)
      .def_readwrite("batch", &TrainOptions::batch)
      .def_readwrite("epochs", &TrainOptions::epochs)
      .def_readwrite("threads", &TrainOptions::threads)
      .def_readwrite("seed", &TrainOptions::seed)
      .def_readwrite("max_seconds", &TrainOptions::max_seconds)
      .def_readwrite("eval_every", &TrainOptions::eval_every)
      .def_readwrite("eval_points", &TrainOptions::eval_points)
      .def_property(
          "eval_mode", [](const TrainOptions& o) { return mode_name(o.eval_mode); },
          [](TrainOptions& o, const std::string& m) { o.eval_mode = mode_of(m); })
      .def_readwrite("rebuild_every", &TrainOptions::rebuild_every)
      .def_readwrite("rebuild_growth", &TrainOptions::rebuild_growth)
      .def_readwrite("lr_schedule", &TrainOptions::lr_schedule)
      .def_readwrite("lr_final", &TrainOptions::lr_final)
      .def_readwrite("lr_decay", &TrainOptions::lr_decay)
      .def_readwrite("build_index", &TrainOptions::build_index)
      .def_readwrite("valid_points", &TrainOptions::valid_points)
      .def_readwrite("best_by", &TrainOptions::best_by)
      .def_readwrite("patience", &TrainOptions::patience);

  model
      .def("train_options",
           [](const PyModel& p) {
             if (p.in_training()) return p.model.train_options();
             py::gil_scoped_release release;
             std::shared_lock lock(p.mutex);
             return p.model.train_options();
           })
      .def(
          "train",
          [](PyModel& p, const py::tuple& x, const py::tuple& y, const TrainOptions& options,
             py::object hook, double interval, const py::object& test_x, const py::object& test_y) {
            p.refuse_in_training("fit");
            const SparseBatchView data = batch_of(x, y);
            const SparseBatchView test =
                test_x.is_none() ? SparseBatchView{} : batch_of(test_x.cast<py::tuple>(), test_y);
            ProgressBridge bridge(std::move(hook), interval);
            TrainResult result;
            {
              py::gil_scoped_release release;
              std::unique_lock lock(p.mutex);
              p.trainer = std::this_thread::get_id();
              struct Done {
                PyModel& p;
                ~Done() { p.trainer = std::thread::id(); }
              } done{p};
              result = p.model.train(
                  data, options, [&](const TrainProgress& t) { return bridge(t); }, test);
            }
            bridge.raise_pending();
            return result_dict(result);
          },
          py::arg("X"), py::arg("Y"), py::arg("options"), py::arg("hook"), py::arg("interval"),
          py::arg("test_X"), py::arg("test_Y"));
}

}  // namespace glide::python
