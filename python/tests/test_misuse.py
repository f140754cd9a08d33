"""Every documented misuse (docs/python.md, "Errors") raises the named exception with a message
that says what is wrong, before any work: a model whose first fit() is refused stays
unfitted."""
import numpy as np
import pytest
import scipy.sparse

import glide
from conftest import SMALL


def small_data(rows=20, features=30, labels=5):
    rng = np.random.default_rng(1)
    X = scipy.sparse.random(rows, features, density=0.2, format="csr", dtype=np.float32,
                            random_state=2)
    Y = [[int(rng.integers(0, labels))] for _ in range(rows)]
    return X, Y


@pytest.fixture(scope="module")
def fitted():
    X, Y = small_data()
    return glide.Model(hidden=[8], sampling="dense", threads=2, num_labels=5).fit(
        X, Y, epochs=1, progress=False)


def test_the_exception_hierarchy():
    assert issubclass(glide.Error, RuntimeError)
    for cls in (glide.DataError, glide.ConfigError):
        assert issubclass(cls, glide.Error) and issubclass(cls, ValueError)
    assert issubclass(glide.NotFittedError, glide.Error)


@pytest.mark.parametrize("make_x, message", [
    (lambda X: X.toarray(), "must be a scipy.sparse CSR matrix"),
    (lambda X: X.tocsc(), "convert it with X.tocsr()"),
    (lambda X: X.astype(np.int32), "float32 or float64"),
    (lambda X: [[1, 2]], "must be a scipy.sparse CSR matrix"),
])
def test_wrong_kinds_of_x_raise_type_error(make_x, message):
    X, Y = small_data()
    model = glide.Model(**SMALL)
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.fit(make_x(X), Y)
    assert not model.fitted


def test_wrong_labels():
    X, Y = small_data()
    model = glide.Model(**SMALL)
    with pytest.raises(glide.DataError, match="Y has 19 rows but X has 20"):
        model.fit(X, Y[:19])
    with pytest.raises(glide.DataError, match="Y: row 3: label id -1 is negative"):
        model.fit(X, Y[:3] + [[-1]] + Y[4:])
    with pytest.raises(TypeError, match="row 2: expected a list of integer label ids"):
        model.fit(X, Y[:2] + [["a"]] + Y[3:])
    with pytest.raises(TypeError, match="Y .*missing"):
        model.fit(X)
    with pytest.raises(TypeError, match="CSR indicator matrix or a sequence"):
        model.fit(X, 3)
    assert not model.fitted


def test_negative_and_non_finite_features():
    X, Y = small_data()
    model = glide.Model(**SMALL)
    bad = X.copy()
    bad.indices[bad.indptr[4]] = -7
    with pytest.raises(glide.DataError, match="X: row 4: feature id -7 is negative"):
        model.fit(bad, Y)
    bad = X.copy()
    bad.data[bad.indptr[2]] = np.nan
    with pytest.raises(glide.DataError, match="training data: row 2: the value of feature "
                                              r"\d+ is not finite"):
        model.fit(bad, Y)
    assert not model.fitted


def test_ids_beyond_the_model(fitted):
    X, Y = small_data()
    wide = scipy.sparse.csr_matrix(X, shape=(20, 40))
    with pytest.raises(glide.DataError, match="X has 40 columns but the model has 30 features"):
        fitted.predict(wide)
    beyond = X.copy()
    beyond.indices[beyond.indptr[3]] = 35  # inside no declared shape check: the ids are
    with pytest.raises(glide.DataError, match=r"row 3: feature id 35 is out of range \(the "
                                              r"model has 30 features\)"):
        fitted.predict(beyond)
    with pytest.raises(glide.DataError, match="Y has 7 labels but the model has 5"):
        fitted.evaluate(X, Y[:19] + [[6]])
    indicator = scipy.sparse.csr_matrix(np.eye(20, 5, dtype=np.float32))
    indicator.indices[0] = 9
    with pytest.raises(glide.DataError, match=r"label id 9 is out of range \(the model has 5 "
                                              r"labels\)"):
        fitted.evaluate(X, indicator)


def test_bad_settings():
    with pytest.raises(glide.ConfigError, match="unknown setting 'size'"):
        glide.Model(size=3)
    with pytest.raises(glide.ConfigError, match=r"'network.sparsity' must be in \(0, 1\], got 2"):
        glide.Model(sparsity=2)
    with pytest.raises(glide.ConfigError, match="sampling"):
        glide.Model(sampling="fast")
    with pytest.raises(glide.ConfigError, match="lsh"):
        glide.Model(lsh=3)
    X, Y = small_data()
    model = glide.Model(**SMALL)
    with pytest.raises(glide.ConfigError, match="'train.lr' must be in"):
        model.fit(X, Y, lr=-1)
    with pytest.raises(glide.ConfigError, match="fit: unknown setting 'hidden'"):
        model.fit(X, Y, hidden=[3])
    assert not model.fitted


def test_bad_arguments(fitted):
    X, Y = small_data()
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        fitted.predict(X, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        fitted.predict(X, k=2.5)
    with pytest.raises(ValueError, match="mode must be 'exact' or 'sampled'"):
        fitted.predict(X, mode="fast")
    with pytest.raises(ValueError, match="k must be in 1..5 for evaluate"):
        fitted.evaluate(X, Y, k=6)
    with pytest.raises(TypeError, match="do not pass Y"):
        fitted.fit("train.txt", Y)
    with pytest.raises(TypeError, match=r"validation must be \(X_test, Y_test\)"):
        fitted.fit(X, Y, validation=X)
    with pytest.raises(glide.ConfigError, match="int8 or bf16, got 'int4'"):
        fitted.quantize("int4")
    with pytest.raises(glide.ConfigError, match="row or tensor, got 'col'"):
        fitted.quantize("int8", "col")


def test_unfitted_model():
    X, Y = small_data()
    model = glide.Model()
    for call in (lambda: model.predict(X), lambda: model.predict_proba(X),
                 lambda: model.evaluate(X, Y), lambda: model.save("x.glide"),
                 lambda: model.quantize()):
        with pytest.raises(glide.NotFittedError, match="not trained yet"):
            call()


def test_files(tmp_path):
    with pytest.raises(glide.Error, match="missing.glide"):
        glide.Model.load(tmp_path / "missing.glide")
    damaged = tmp_path / "damaged.glide"
    damaged.write_bytes(b"not a model")
    with pytest.raises(glide.Error, match="damaged.glide"):
        glide.Model.load(damaged)
    bad = tmp_path / "bad.txt"
    bad.write_text("2 10 3\n1 0:1.0\n1 x:2\n")
    with pytest.raises(glide.Error, match="bad.txt:3"):
        glide.Model(**SMALL).fit(bad)
    with pytest.raises(glide.Error, match="bad.txt:3"):
        glide.read_dataset(bad)
