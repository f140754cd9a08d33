#!/usr/bin/env python3
"""How much memory the Python module's input path adds on top of the caller's matrix: a float32
CSR matrix with int32 indices is read in place (only the row offsets are widened to uint64),
while float64 values or int64 indices are converted (one float32 / uint32 copy).

Each case runs in a fresh process: it builds the matrix, resets the peak resident size
(/proc/self/clear_refs, Linux), runs the input path of predict() (the checks of X in Python
and the native batch checks over the arrays, both as predict() runs them) and then predict()
on the first rows with a tiny model, and reports the peak growth in bytes per nonzero.

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/python_input_memory.py [--rows 2000000]
        [--nnz-per-row 50]

Not a test and not a timing: it prints memory only. Expect about 0 bytes/nonzero for float32 +
int32 (plus 8 bytes per row for the offsets) and about 4 or 8 for the converted cases.
"""
import argparse
import subprocess
import sys


def vm(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(rows: int, per_row: int, value_dtype: str, index_dtype: str) -> None:
    import numpy as np
    import scipy.sparse

    import glide
    from glide import _data, _glide

    features = 100_000
    rng = np.random.default_rng(1)
    nnz = rows * per_row
    indptr = np.arange(0, nnz + 1, per_row, dtype=np.int64 if index_dtype == "int64" else np.int32)
    indices = rng.integers(0, features, size=nnz, dtype=np.dtype(index_dtype))
    data = rng.random(nnz, dtype=np.float32).astype(value_dtype, copy=False)
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(rows, features), copy=False)
    X.indices, X.indptr = indices, indptr  # scipy narrows int64 ids that fit in int32
    assert X.indices.dtype == np.dtype(index_dtype) and X.dtype == np.dtype(value_dtype)
    model = glide.Model(hidden=[8], sampling="dense", threads=1, num_features=features,
                        num_labels=4)
    model.fit(X[:64], [[r % 4] for r in range(64)], epochs=1, progress=False)
    matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from the current resident size
    before = vm("VmRSS")
    x, _ = _data.features(X, "X")
    _glide.check_batch(x, None, features, 4, "X")
    labels, _ = model.predict(X[:1000], k=1)
    growth = vm("VmHWM") - before
    print(f"{value_dtype:>7} values, {index_dtype} indices: matrix {matrix_bytes / 1e6:8.1f} MB, "
          f"peak growth {growth / 1e6:8.1f} MB = {growth / nnz:5.2f} bytes/nonzero "
          f"(row offsets as uint64: {8 * (rows + 1) / 1e6:.1f} MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--nnz-per-row", type=int, default=50)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        measure(args.rows, args.nnz_per_row, *args.case.split(","))
        return 0
    for case in ("float32,int32", "float64,int32", "float32,int64"):
        done = subprocess.run([sys.executable, __file__, "--rows", str(args.rows),
                               "--nnz-per-row", str(args.nnz_per_row), "--case", case])
        if done.returncode != 0:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
