"""Input checks and conversion: SciPy CSR matrices and label lists to the arrays the native
module reads (CSR offsets uint64, ids uint32, values float32), copying only what is not already
in that form. Problems are reported before any work, as TypeError (wrong kind of object or
dtype) or glide.DataError (wrong shape, negative ids; the native checks add out-of-range ids,
bad offsets and non-finite values)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import scipy.sparse

from ._errors import DataError

Csr = Tuple[np.ndarray, np.ndarray, np.ndarray]  # indptr uint64, indices uint32, data float32
Labels = Tuple[np.ndarray, np.ndarray]  # indptr uint64, ids uint32

_U32_MAX = np.iinfo(np.uint32).max


def _row_of(indptr: np.ndarray, position: int) -> int:
    return int(np.searchsorted(indptr, position, side="right")) - 1


def _offsets(indptr: np.ndarray, name: str) -> np.ndarray:
    if indptr.dtype.kind not in "iu":
        raise TypeError(f"{name}.indptr: expected integers, got {indptr.dtype}")
    if indptr.size and indptr.min() < 0:
        raise DataError(f"{name}.indptr has a negative offset")
    indptr = np.ascontiguousarray(indptr)
    if indptr.dtype == np.int64:
        return indptr.view(np.uint64)  # checked non-negative: the same bits
    return indptr.astype(np.uint64, copy=False)


def _ids(ids: np.ndarray, indptr: np.ndarray, name: str, what: str) -> np.ndarray:
    """`ids` as uint32 (a view of int32 and uint32 arrays, else a checked copy)."""
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{name}: {what} ids must be integers, got {ids.dtype}")
    if ids.size:
        low = ids.min()
        if low < 0:
            at = int(np.argmax(ids < 0))
            raise DataError(f"{name}: row {_row_of(indptr, at)}: {what} id {int(ids[at])} "
                            f"is negative")
        high = ids.max()
        if high > _U32_MAX:
            at = int(np.argmax(ids > _U32_MAX))
            raise DataError(f"{name}: row {_row_of(indptr, at)}: {what} id {int(ids[at])} "
                            f"is out of range (ids are below 2^32)")
    ids = np.ascontiguousarray(ids)
    if ids.dtype == np.int32:
        return ids.view(np.uint32)  # checked non-negative: the same bits
    return ids.astype(np.uint32, copy=False)


def _csr(matrix: Any, name: str) -> Any:
    if not scipy.sparse.issparse(matrix):
        raise TypeError(f"{name} must be a scipy.sparse CSR matrix (csr_matrix or csr_array), "
                        f"got {type(matrix).__name__}")
    if matrix.format != "csr":
        raise TypeError(f"{name} must be a scipy.sparse CSR matrix, got the {matrix.format} "
                        f"format: convert it with {name}.tocsr()")
    return matrix


def features(X: Any, name: str = "X") -> Tuple[Csr, Tuple[int, int]]:
    """X (a CSR matrix of float32 or float64 values) as (indptr, indices, data) and its shape.
    float32 values and int32 indices are passed on without a copy."""
    X = _csr(X, name)
    if X.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must hold float32 or float64 values, got {X.dtype}")
    indptr = _offsets(X.indptr, name)
    # scipy keeps nnz entries in indices/data; a matrix cut with slicing may hold more.
    end = int(indptr[-1]) if indptr.size else 0
    indices = _ids(X.indices[:end], X.indptr, name, "feature")
    data = np.ascontiguousarray(X.data[:end], dtype=np.float32)
    return (indptr, indices, data), (int(X.shape[0]), int(X.shape[1]))


def labels(Y: Any, rows: int, name: str = "Y") -> Tuple[Labels, int]:
    """Y as (indptr, ids) and the number of labels it implies (its width for a matrix, the
    largest id + 1 for lists). Y: a CSR indicator matrix (stored nonzeros are the labels), a
    sequence of label lists, or a 1-d array / list of one label per row."""
    if scipy.sparse.issparse(Y):
        Y = _csr(Y, name)
        if Y.shape[0] != rows:
            raise DataError(f"{name} has {Y.shape[0]} rows but X has {rows}")
        if Y.nnz and not np.all(Y.data):
            Y = Y.copy()
            Y.eliminate_zeros()
        indptr = _offsets(Y.indptr, name)
        end = int(indptr[-1]) if indptr.size else 0
        return (indptr, _ids(Y.indices[:end], Y.indptr, name, "label")), int(Y.shape[1])
    if isinstance(Y, (str, bytes)) or not hasattr(Y, "__len__"):
        raise TypeError(f"{name} must be a CSR indicator matrix or a sequence of label lists, "
                        f"got {type(Y).__name__}")
    if len(Y) != rows:
        raise DataError(f"{name} has {len(Y)} rows but X has {rows}")
    if isinstance(Y, np.ndarray) and Y.ndim == 1 and Y.dtype.kind in "iu":
        counts = np.ones(rows, dtype=np.uint64)  # one label per row
        flat = Y
    else:
        parts = []
        for r, row in enumerate(Y):
            part = np.atleast_1d(np.asarray(row))
            if part.ndim != 1 or (part.size and part.dtype.kind not in "iu"):
                raise TypeError(f"{name}: row {r}: expected a list of integer label ids, got "
                                f"{row!r}")
            parts.append(part)
        counts = np.fromiter((p.size for p in parts), dtype=np.uint64, count=rows)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if flat.dtype.kind not in "iu":  # every row empty
            flat = flat.astype(np.int64)
    indptr = np.zeros(rows + 1, dtype=np.uint64)
    np.cumsum(counts, out=indptr[1:])
    ids = _ids(flat, indptr, name, "label")
    return (indptr, ids), (int(ids.max()) + 1 if ids.size else 0)


def labels_or_none(Y: Optional[Any], rows: int, name: str) -> Tuple[Optional[Labels], int]:
    if Y is None:
        return None, 0
    return labels(Y, rows, name)


def _as_int32(ids: np.ndarray) -> np.ndarray:
    """uint32 ids as scipy's int32 indices: a view when every id fits (the usual case)."""
    if ids.size and int(ids.max()) > np.iinfo(np.int32).max:
        return ids.astype(np.int64)
    return ids.view(np.int32)


def to_scipy(csr: Csr, rows_labels: Labels, num_features: int,
             num_labels: int) -> Tuple[Any, Any]:
    """Native CSR arrays (of a file) as SciPy matrices X (float32) and Y (indicator), sharing
    the arrays where scipy's index dtypes allow it."""
    indptr, indices, data = csr
    rows = indptr.size - 1
    width = max(num_features, int(indices.max()) + 1 if indices.size else 0)
    X = scipy.sparse.csr_matrix((data, _as_int32(indices), indptr.view(np.int64)),
                                shape=(rows, width), copy=False)
    lptr, lids = rows_labels
    height = max(num_labels, int(lids.max()) + 1 if lids.size else 0)
    Y = scipy.sparse.csr_matrix((np.ones(lids.size, dtype=np.float32), _as_int32(lids),
                                 lptr.view(np.int64)), shape=(rows, height), copy=False)
    return X, Y
