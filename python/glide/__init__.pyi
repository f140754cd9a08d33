"""glide: sparse extreme-classification networks (SLIDE-style LSH-sampled output layers) on
CPUs, from Python. See docs/python.md."""
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypedDict, Union

import numpy as np
import numpy.typing as npt
import scipy.sparse

__version__: str

PathLike = Union[str, os.PathLike[str]]
#: A CSR matrix of features: float32 or float64 values, any integer index dtype.
Features = Union[scipy.sparse.csr_matrix, scipy.sparse.csr_array]
#: Labels: a CSR indicator matrix, a sequence of label lists, or one label per row.
Labels = Union[scipy.sparse.csr_matrix, scipy.sparse.csr_array, Sequence[Sequence[int]],
               Sequence[int], npt.NDArray[np.integer[Any]]]

class Error(RuntimeError):
    """Every error glide reports; the message names what is wrong and where."""

class DataError(Error, ValueError):
    """Bad input data (shapes, negative or out-of-range ids, bad offsets, non-finite values),
    reported before any work."""

class ConfigError(Error, ValueError):
    """An unknown setting or an invalid value."""

class NotFittedError(Error):
    """The model has no network yet: call fit() or use Model.load()."""

class Metrics(TypedDict, total=False):
    """P@1..k and nDCG@1..k (k <= 5) and the rows evaluated; evaluations during training, and
    evaluate() given Y_train or of a model that keeps its training label counts, also have
    PSP@1..5 (each label weighted by its rarity in the training data)."""
    points: int

class _TrainingCounts(TypedDict):
    """The counts a Progress and a FitSummary share."""
    samples: int
    batches: int
    seconds: float
    eval_seconds: float
    loss: float
    samples_per_second: float

class Progress(_TrainingCounts):
    """What a fit() callback receives."""
    epoch: float
    eta_seconds: float
    eval: Optional[Dict[str, float]]
    #: with valid_points: the held-out rows' metrics when just validated, else None; `best` when
    #: that validation is the best so far
    validation: Optional[Dict[str, float]]
    best: bool

class _FitSummaryBase(_TrainingCounts):
    stopped: bool
    setup_seconds: float

class FitSummary(_FitSummaryBase, total=False):
    """Model.last_fit after fit(); the best_* keys and patience_stopped with valid_points (the
    model then holds the best validation's weights)."""
    best_validation: Dict[str, float]
    best_samples: int
    best_epoch: float
    patience_stopped: bool

#: fit() keywords that change training settings.
FIT_SETTINGS: Tuple[str, ...]

def read_dataset(path: PathLike) -> Tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    """Reads a dataset file (.gds, XC text, libsvm; .zst too) as (X float32 CSR, Y CSR
    indicator)."""

class Model:
    """A network with its weights, optimizer state and config.

    Model(**settings): every setting optional, each a key of the config's network or train
    section (hidden=[128], sampling="lsh", loss="softmax", sparsity=0.0025, lsh={...},
    wide=True, lr=0 (3e-4 beside the wide layer, 0.01 without it), batch=256, epochs=5,
    threads=0, seed=1, ...; network={...} and train={...} set a whole section). num_features and num_labels come from the first fit()'s
    data unless given. ConfigError for an unknown key or an invalid value."""

    last_fit: Optional[FitSummary]

    def __init__(self, **settings: Any) -> None: ...
    @classmethod
    def load(cls, path: PathLike, optimizer_state: bool = True) -> "Model":
        """Loads a .glide file (save() or `glide train` wrote it); glide.Error if missing or
        damaged."""
    def save(self, path: PathLike, optimizer_state: bool = True) -> None:
        """Writes the model atomically; the CLI (`glide eval/predict/serve`) loads it."""
    def quantize(self, precision: str = "int8", granularity: str = "row") -> "Model":
        """Output layer to "int8" (granularity "row" or "tensor") or "bf16", in place, for
        inference; returns self."""
    @property
    def fitted(self) -> bool: ...
    @property
    def config(self) -> Dict[str, Dict[str, Any]]:
        """{"network": {...}, "train": {...}}, the JSON of `glide train --print-config`."""
    @property
    def num_features(self) -> int: ...
    @property
    def num_labels(self) -> int: ...
    @property
    def precision(self) -> str:
        """"fp32", "int8" or "bf16"."""
    @property
    def has_index(self) -> bool:
        """True when sampled mode searches an output index."""
    @property
    def samples_trained(self) -> int: ...
    def fit(self, X: Union[Features, PathLike], Y: Optional[Labels] = None, *,
            epochs: Optional[float] = None,
            validation: Union[Tuple[Features, Labels], PathLike, None] = None,
            callback: Optional[Callable[[Progress], Optional[bool]]] = None,
            progress: Optional[bool] = None, eval_mode: str = "exact",
            build_index: bool = True, valid_points: int = 0, best_by: str = "p1+p5",
            patience: int = 0, **train_settings: Any) -> "Model":
        """Trains on (X, Y) or a dataset file. callback(progress) a few times a second and after
        each evaluation; False stops. valid_points: hold that many rows out and keep the best
        validation's weights (best_by, patience: see docs/python.md). Ctrl-C stops after the current batch (KeyboardInterrupt,
        the model kept). train_settings: lr, batch, threads, seed, max_seconds, ... Returns
        self."""
    def predict(self, X: Features, k: int = 5, mode: str = "exact",
                probes: int = 0) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """(labels, scores), each (rows, k), best first; label -1 / score 0 pad rows with fewer
        than k labels. mode "exact" or "sampled"."""
    def predict_proba(self, X: Features) -> npt.NDArray[np.float32]:
        """Every label's probability, (rows, num_labels), exact mode."""
    def evaluate(self, X: Features, Y: Labels, k: int = 5, mode: str = "exact",
                 probes: int = 0, Y_train: Optional[Labels] = None) -> Dict[str, float]:
        """{"P@1": ..., "nDCG@1": ..., ... up to k (<= 5), "points": rows evaluated}; with
        Y_train (the training rows' labels), or where the model keeps its training set's label
        counts (fit() and `glide train` save them), also "PSP@1".. up to k."""
