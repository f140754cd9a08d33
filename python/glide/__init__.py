"""glide: sparse extreme-classification networks (SLIDE-style LSH-sampled output layers) on
CPUs, from Python.

    import glide
    model = glide.Model(hidden=[128], sampling="lsh")
    model.fit(X, Y, epochs=5, validation=(X_test, Y_test))
    labels, scores = model.predict(X_test, k=5)
    print(model.evaluate(X_test, Y_test))
    model.save("model.glide")          # `glide predict`, `glide serve` load it

X is a scipy.sparse CSR matrix (float32 or float64 values, any integer index dtype; float32
values with int32 indices are read in place), Y a list of label lists or a CSR indicator matrix.
See docs/python.md.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from . import _data, _glide, _progress, _settings
from ._errors import ConfigError, DataError, Error, NotFittedError

__all__ = ["Model", "Error", "DataError", "ConfigError", "NotFittedError", "read_dataset",
           "__version__"]
__version__: str = _glide.version()

PathLike = Union[str, "os.PathLike[str]"]


def read_dataset(path: PathLike) -> Tuple[Any, Any]:
    """Reads a dataset file (.gds, XC text, libsvm; .zst-compressed text too) as (X, Y): a
    float32 CSR matrix of features and a CSR indicator matrix of labels. Their widths are the
    dimensions the file declares (or the largest id + 1). glide.Error names the file and the
    line of a problem."""
    csr, labels, num_features, num_labels = _glide.read_dataset(os.fspath(path))
    return _data.to_scipy(csr, labels, num_features, num_labels)


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"{name} must be at least 1, got {k}")
    return int(k)


def _check_mode(mode: str) -> str:
    if mode not in ("exact", "sampled"):
        raise ValueError(f"mode must be 'exact' or 'sampled', got {mode!r}")
    return mode


class Model:
    """A network with its weights, optimizer state and config.

    Model(**settings) makes an untrained model; every setting is optional and is a key of the
    config's network or train section (`glide train --print-config` lists them), e.g.
    hidden=[128], sampling="lsh"|"random"|"dense", loss="softmax"|"sigmoid", sparsity=0.0025,
    lsh={"K": 6, "L": 8, "range_pow": 15}, wide="auto"|"on"|"off"|"tail" (or True/False; auto: the
    first fit() keeps the wide layer unless the network alone scores higher on held-out training
    points, and then trains "tail": the network with a wide layer over the rare labels only), lr=0 (0: 3e-4 beside the wide layer, 0.01 without it), batch=256, epochs=5,
    threads=0, seed=1. num_features and num_labels come from the data of the first fit() unless
    given. Model.load(path) reads a model file (`glide train` writes them too).

    Thread-safety: predict/evaluate may run from several Python threads at once (the GIL is
    released while they work); fit waits for them and they wait for fit.
    """

    def __init__(self, **settings: Any) -> None:
        self._config = _settings.apply(_settings.defaults(), settings)
        _settings.check(self._config)
        self._native: Any = None
        self.last_fit: Optional[Dict[str, Any]] = None
        """What the last fit() returned: samples, batches, seconds, loss, stopped, ..."""

    # --- making and storing ----------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike, optimizer_state: bool = True) -> "Model":
        """Loads a .glide model file (written by save() or `glide train`). With
        optimizer_state False the Adam moments are not read (less memory; training restarts
        them). glide.Error for a missing, damaged or incompatible file."""
        model = cls.__new__(cls)
        model._native = _glide.Model.load(os.fspath(path), optimizer_state)
        model._config = json.loads(model._native.config_json())
        model.last_fit = None
        return model

    def save(self, path: PathLike, optimizer_state: bool = True) -> None:
        """Writes the model file atomically; `glide eval/predict/serve` and Model.load read it.
        With optimizer_state the optimizer's moments are saved too (training resumes exactly)."""
        self._fitted("save").save(os.fspath(path), optimizer_state)

    def quantize(self, precision: str = "int8", granularity: str = "row") -> "Model":
        """Converts the output layer in place for inference, as `glide quantize` does: "int8"
        (a scale per row, granularity "row", or one per layer, "tensor") or "bf16". Hidden layers
        stay fp32; an int8 model can no longer be trained. Returns self."""
        native = self._fitted("quantize")
        if precision not in ("int8", "bf16"):
            raise ConfigError(f"quantize: the precision must be int8 or bf16, got {precision!r}")
        if granularity not in ("row", "tensor"):
            raise ConfigError(f"quantize: the granularity must be row or tensor, got "
                              f"{granularity!r}")
        native.quantize(precision, granularity)
        return self

    # --- what the model is -----------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        """True once the model has a network (after fit() or load())."""
        return self._native is not None

    @property
    def config(self) -> Dict[str, Dict[str, Any]]:
        """The whole config as a dict {"network": {...}, "train": {...}} (the JSON of
        `glide train --print-config`); before the first fit(), num_features and num_labels are 0
        unless given."""
        if self._native is not None:
            return json.loads(self._native.config_json())
        return json.loads(json.dumps(self._config))

    @property
    def num_features(self) -> int:
        return self._native.num_features if self._native else self._config["network"]["num_features"]

    @property
    def num_labels(self) -> int:
        return self._native.num_labels if self._native else self._config["network"]["num_labels"]

    @property
    def precision(self) -> str:
        """The output layer's precision: "fp32", "int8" or "bf16"."""
        return self._native.precision if self._native else "fp32"

    @property
    def has_index(self) -> bool:
        """True when sampled mode searches an output index (built at the end of fit())."""
        return bool(self._native and self._native.has_index)

    @property
    def samples_trained(self) -> int:
        """Samples trained since the model was made (across fit() calls and save/load)."""
        return self._native.samples_trained if self._native else 0

    def __repr__(self) -> str:
        net = self.config["network"]
        state = f"{self.samples_trained} samples trained" if self.fitted else "not fitted"
        return (f"glide.Model({net['num_features']} features -> {net['hidden']} -> "
                f"{net['num_labels']} labels, {net['sampling']} sampling, {net['loss']}; "
                f"{state})")

    # --- training --------------------------------------------------------------------------

    def fit(self, X: Any, Y: Any = None, *, epochs: Optional[float] = None,
            validation: Any = None, callback: Optional[_progress.Callback] = None,
            progress: Optional[bool] = None, eval_mode: str = "exact",
            build_index: bool = True, valid_points: int = 0, best_by: str = "p1+p5",
            patience: int = 0, **train_settings: Any) -> "Model":
        """Trains on X (CSR features) and Y (label lists or a CSR indicator matrix), or on a
        dataset file: fit("train.txt", validation="test.txt").

        epochs: passes over the data (default: the model's train.epochs, 5). validation:
        (X_test, Y_test) or a file, evaluated after each epoch (or every eval_every batches) on
        its first eval_points rows. callback(progress) is called a few times a second and after
        each evaluation with a dict (epoch, samples, batches, seconds, loss,
        samples_per_second, eta_seconds, eval: a metrics dict or None); returning False stops
        training. progress: draw a progress line on stderr (default: when there is no callback
        and stderr is a terminal). valid_points: hold that many training rows out (every
        (rows / valid_points)-th) and score them at every evaluation point and at the end; the
        model keeps the weights of the best of those validations (best_by: "p1+p5", "p1", "p5"
        or "psp5"), not the last; patience: stop after that many validations in a row without
        a new best (0: never). The callback's dict then also has "validation" (a metrics dict or
        None) and "best"; last_fit has "best_validation", "best_samples", "best_epoch" and
        "patience_stopped". train_settings: lr, batch, threads, seed, max_seconds, ...
        (FIT_SETTINGS). The first fit() takes num_features/num_labels from the data unless
        given. Ctrl-C stops training after the current batch and raises KeyboardInterrupt; the
        model keeps the updates made so far. Returns self; self.last_fit holds the summary."""
        unknown = set(train_settings) - set(_settings.FIT_SETTINGS)
        if unknown:
            raise ConfigError(f"fit: unknown setting '{sorted(unknown)[0]}' (fit takes "
                              f"{', '.join(_settings.FIT_SETTINGS)}; set the others in Model())")
        if epochs is not None:
            train_settings["epochs"] = epochs
        _check_mode(eval_mode)
        config = _settings.apply(self.config, {"train": train_settings})
        _settings.check(config)  # before the data is read

        x, y, test_x, test_y, width, num_labels = self._training_data(X, Y, validation)
        net = config["network"]
        if self._native is None:
            net["num_features"] = net["num_features"] or width
            net["num_labels"] = net["num_labels"] or num_labels
        self._check_width(width, num_labels, net["num_features"], net["num_labels"], "fit")
        _native_check(x, y, net["num_features"], net["num_labels"], "training data")
        if test_x is not None:
            _native_check(test_x, test_y, net["num_features"], net["num_labels"],
                          "validation data")
        if self._native is None:
            self._native = _settings.create(config)

        options = self._native.train_options()
        for key, value in train_settings.items():
            setattr(options, key, value.item() if hasattr(value, "item") else value)
        options.eval_mode = eval_mode
        options.build_index = bool(build_index)
        options.valid_points = int(valid_points)
        options.best_by = str(best_by)
        options.patience = int(patience)
        show = progress if progress is not None else (callback is None and _isatty())
        hook = _progress.ProgressHook(callback, bool(show), options.epochs)
        result = None
        try:
            result = self._native.train(x, y, options, hook, 0.1, test_x, test_y)
        finally:
            hook.close(result)
        self.last_fit = result
        return self

    # --- prediction ------------------------------------------------------------------------

    def predict(self, X: Any, k: int = 5, mode: str = "exact",
                probes: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """The top-k labels of every row of X, best first, as (labels, scores): an int64 and a
        float32 array of shape (rows, k). Rows with fewer than k labels (k above the label
        count, or sampled mode finding fewer candidates) are padded with label -1, score 0.
        Scores are softmax probabilities (sigmoids for loss="sigmoid"). mode "exact" scores
        every label; "sampled" only the candidates of the model's output index (probes: how
        many of its clusters; 0: 8) or of its LSH tables."""
        native = self._fitted("predict")
        k = _check_k(k)
        x, (rows, width) = _data.features(X, "X")
        self._check_width(width, 0, native.num_features, native.num_labels, "predict")
        _native_check(x, None, native.num_features, native.num_labels, "X")
        labels, scores, _ = native.predict(x, k, _check_mode(mode), int(probes))
        return labels, scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Every label's probability for every row of X, a dense float32 array of shape
        (rows, num_labels) (exact mode): softmax rows sum to 1; with loss="sigmoid" each entry is
        that label's own probability. Meant for label sets of moderate size: use predict() for
        the top k of a large one."""
        native = self._fitted("predict_proba")
        x, (rows, width) = _data.features(X, "X")
        self._check_width(width, 0, native.num_features, native.num_labels, "predict_proba")
        _native_check(x, None, native.num_features, native.num_labels, "X")
        return native.predict_all(x)

    def evaluate(self, X: Any, Y: Any, k: int = 5, mode: str = "exact",
                 probes: int = 0, Y_train: Optional[Any] = None) -> Dict[str, float]:
        """Precision and nDCG at 1..k (k <= 5) of the predictions for X against the labels Y:
        {"P@1": ..., "nDCG@1": ..., ..., "points": rows evaluated}. Rows without labels are
        skipped. Also PSP@1..k, each correct label weighted by its rarity in the training data
        as `glide eval` weighs it: among Y_train, the training rows' labels (any form Y takes),
        where given, else among the training set whose label counts the model keeps (a model
        that fit() or `glide train` trained; without Y_train, a model without them gives none)."""
        native = self._fitted("evaluate")
        k = _check_k(k)
        if k > 5:
            raise ValueError(f"k must be in 1..5 for evaluate, got {k}")
        x, (rows, width) = _data.features(X, "X")
        y, num_labels = _data.labels(Y, rows, "Y")
        self._check_width(width, num_labels, native.num_features, native.num_labels, "evaluate")
        _native_check(x, y, native.num_features, native.num_labels, "evaluation data")
        y_train = None
        if Y_train is not None:
            train_rows = Y_train.shape[0] if hasattr(Y_train, "shape") else len(Y_train)
            y_train, train_labels = _data.labels(Y_train, train_rows, "Y_train")
            if train_labels > native.num_labels:
                raise DataError(f"evaluate: Y_train has {train_labels} labels but the model has "
                                f"{native.num_labels}")
        m = native.evaluate(x, y, _check_mode(mode), int(probes), y_train)
        out: Dict[str, float] = {}
        for name in ("P", "nDCG") + (("PSP",) if "PSP@1" in m else ()):
            for i in range(1, k + 1):
                out[f"{name}@{i}"] = m[f"{name}@{i}"]
        out["points"] = m["points"]
        return out

    # --- helpers ---------------------------------------------------------------------------

    def _training_data(self, X: Any, Y: Any, validation: Any) -> Tuple[Any, ...]:
        """fit()'s data as native arrays: (x, y, test_x, test_y, width, num_labels), the width and
        label count the larger of the training and validation data's."""
        test_x = test_y = None
        if isinstance(X, (str, os.PathLike)):
            if Y is not None:
                raise TypeError("fit(path): the labels come from the file; do not pass Y")
            x, y, rows, width, num_labels = self._read(X)
        else:
            if Y is None:
                raise TypeError("fit(X, Y): Y (the labels of X's rows) is missing")
            x, (rows, width) = _data.features(X, "X")
            y, num_labels = _data.labels(Y, rows, "Y")
        if rows == 0:
            raise DataError("fit: the training data has no rows")
        if validation is not None:
            if isinstance(validation, (str, os.PathLike)):
                test_x, test_y, _, test_width, test_labels = self._read(validation)
            else:
                if not isinstance(validation, tuple) or len(validation) != 2:
                    raise TypeError("validation must be (X_test, Y_test) or a file path")
                test_x, (test_rows, test_width) = _data.features(validation[0], "validation X")
                test_y, test_labels = _data.labels(validation[1], test_rows, "validation Y")
            width, num_labels = max(width, test_width), max(num_labels, test_labels)
        return x, y, test_x, test_y, width, num_labels

    def _fitted(self, what: str) -> Any:
        if self._native is None:
            raise NotFittedError(f"Model.{what}: the model is not trained yet; call fit() or "
                                 f"Model.load() first")
        return self._native

    @staticmethod
    def _read(path: PathLike) -> Tuple[Any, Any, int, int, int]:
        csr, labels, num_features, num_labels = _glide.read_dataset(os.fspath(path))
        rows = csr[0].size - 1
        width = max(num_features, int(csr[1].max()) + 1 if csr[1].size else 0)
        height = max(num_labels, int(labels[1].max()) + 1 if labels[1].size else 0)
        return csr, labels, rows, width, height

    @staticmethod
    def _check_width(width: int, num_labels: int, model_features: int, model_labels: int,
                     what: str) -> None:
        if model_features and width > model_features:
            raise DataError(f"{what}: X has {width} columns but the model has {model_features} "
                            f"features")
        if model_labels and num_labels > model_labels:
            raise DataError(f"{what}: Y has {num_labels} labels but the model has "
                            f"{model_labels}")


def _native_check(x: Any, y: Any, num_features: int, num_labels: int, where: str) -> None:
    try:
        _glide.check_batch(x, y, num_features, num_labels, where)
    except Error as e:
        raise DataError(str(e)) from None


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


FIT_SETTINGS = _settings.FIT_SETTINGS
