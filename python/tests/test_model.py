"""glide.Model against the command line and against itself: the same model file gives the same
predictions and metrics in both; data given in any accepted form trains the same model."""
import os
import signal
import threading

import numpy as np
import pytest
import scipy.sparse

import glide
from conftest import EPOCHS, SMALL, run_cli


def cli_predictions(model_path, data_path, k):
    """`glide predict` on a dataset file (its header line dropped: predict reads inputs)."""
    lines = open(data_path).read().splitlines()[1:]
    inputs = data_path.parent / (data_path.name + ".inputs")
    inputs.write_text("\n".join(lines) + "\n")
    out = run_cli("predict", "--model", model_path, "-k", k, "--threads", "2", inputs)
    labels, scores = [], []
    for line in out.splitlines():
        pairs = [p.split(":") for p in line.split()]
        labels.append([int(a) for a, _ in pairs])
        scores.append([float(b) for _, b in pairs])
    return labels, scores


def cli_exact_metrics(model_path, data_path):
    """The exact row of `glide eval`: {"P@1": ..., "nDCG@5": ...}."""
    out = run_cli("eval", "--model", model_path, "--test", data_path, "--mode", "exact",
                  "--threads", "2").splitlines()
    header = out[0].split()
    row = next(line.split() for line in out if line.startswith("exact"))
    return {name: float(value) for name, value in zip(header[1:7], row[1:7])}


def same_as_cli(labels, scores, cli_labels, cli_scores):
    assert labels.tolist() == cli_labels
    # The CLI prints 6 significant digits.
    np.testing.assert_allclose(scores, np.array(cli_scores), rtol=1e-5, atol=1e-12)


def test_predict_equals_the_cli_for_the_same_model_file(model, test_set, data_dir, tmp_path):
    path = tmp_path / "py.glide"
    model.save(path)
    X, _ = test_set
    labels, scores = model.predict(X, k=5)
    same_as_cli(labels, scores, *cli_predictions(path, data_dir / "test.txt", 5))
    # The file read back answers alike (bit for bit).
    loaded = glide.Model.load(path)
    again = loaded.predict(X, k=5)
    assert np.array_equal(again[0], labels) and np.array_equal(again[1], scores)


def test_a_python_model_evaluates_alike_in_the_cli(model, test_set, data_dir, tmp_path):
    path = tmp_path / "py.glide"
    model.save(path)
    ours = model.evaluate(*test_set)
    theirs = cli_exact_metrics(path, data_dir / "test.txt")
    for name in ("P@1", "P@3", "P@5", "nDCG@1", "nDCG@3", "nDCG@5"):
        assert ours[name] == pytest.approx(theirs[name], abs=1e-4), name
    assert ours["points"] == test_set[0].shape[0]
    assert ours["P@1"] > 0.5  # the planted structure is learnt


def test_psp_given_the_training_labels_equals_the_cli(model, train_set, test_set, data_dir,
                                                      tmp_path):
    path = tmp_path / "py.glide"
    model.save(path)
    out = run_cli("eval", "--model", path, "--test", data_dir / "test.txt", "--mode", "exact",
                  "--threads", "2", "--train", data_dir / "train.txt").splitlines()
    theirs = dict(zip(out[0].split()[1:], next(line.split()[1:] for line in out
                                               if line.startswith("exact"))))
    _, Y_train = train_set
    ours = model.evaluate(*test_set, Y_train=Y_train)
    for name in ("PSP@1", "PSP@3", "PSP@5", "P@1"):
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-4), name
    assert ours["PSP@1"] != pytest.approx(ours["P@1"], abs=1e-3)  # the weights count
    # The same from label lists, and without Y_train from the label counts fit() keeps in the
    # model and its file; more labels than the model's is an error naming Y_train.
    lists = [list(Y_train.indices[a:b]) for a, b in zip(Y_train.indptr[:-1], Y_train.indptr[1:])]
    assert model.evaluate(*test_set, k=3, Y_train=lists)["PSP@3"] == ours["PSP@3"]
    for kept in (model.evaluate(*test_set), glide.Model.load(path).evaluate(*test_set)):
        for name in ("PSP@1", "PSP@3", "PSP@5"):
            assert kept[name] == pytest.approx(ours[name], abs=1e-6), name
    with pytest.raises(glide.DataError, match="Y_train"):
        model.evaluate(*test_set, Y_train=[[model.num_labels]])


def test_a_cli_model_loads_in_python(data_dir, test_set, tmp_path):
    path = tmp_path / "cli.glide"
    run_cli("train", "--train", data_dir / "train.txt", "-o", path, "--epochs", EPOCHS,
            "--hidden", 32, "--range-pow", 8, "--threads", 2, "-q")
    model = glide.Model.load(path)
    assert model.num_features == 2000 and model.num_labels == 300 and model.has_index
    X, Y = test_set
    labels, scores = model.predict(X, k=3)
    same_as_cli(labels, scores, *cli_predictions(path, data_dir / "test.txt", 3))
    theirs = cli_exact_metrics(path, data_dir / "test.txt")
    assert model.evaluate(X, Y)["P@1"] == pytest.approx(theirs["P@1"], abs=1e-4)
    # The same settings from Python train the same network (up to the order in which the LSH
    # tables were filled in parallel, which can change which negatives were sampled).
    python = glide.Model(**SMALL).fit(data_dir / "train.txt", epochs=EPOCHS, progress=False)
    assert (python.predict(X, k=1)[0] == labels[:, :1]).mean() >= 0.9


def test_every_input_form_trains_the_same_model(train_set, test_set):
    X, Y = train_set
    Xt, _ = test_set
    # Dense sampling: training is then deterministic, so any difference is the input's.
    dense = dict(SMALL, sampling="dense")
    reference = glide.Model(**dense).fit(X, Y, epochs=1, progress=False).predict(Xt, k=3)
    label_lists = [list(Y.indices[Y.indptr[r]:Y.indptr[r + 1]]) for r in range(Y.shape[0])]
    X64 = X.astype(np.float64)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    for features, labels in ((X64, Y), (X, label_lists), (scipy.sparse.csr_array(X), Y)):
        got = glide.Model(**dense).fit(features, labels, epochs=1, progress=False).predict(Xt, k=3)
        assert np.array_equal(got[0], reference[0])
        np.testing.assert_array_equal(got[1], reference[1])


def test_one_label_per_row_as_a_1d_array():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, size=400)
    rows = np.repeat(np.arange(400), 3)
    cols = (y[rows] * 5 + rng.integers(0, 5, size=rows.size)).astype(np.int32)
    X = scipy.sparse.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(400, 50))
    model = glide.Model(hidden=[16], sampling="dense", lr=0.01, threads=2)
    model.fit(X, y, epochs=10, progress=False)
    assert model.num_labels == 10 and model.num_features == 50
    assert model.evaluate(X, [[v] for v in y], k=1)["P@1"] > 0.9
    same = glide.Model(hidden=[16], sampling="dense", lr=0.01, threads=2)
    same.fit(X, list(y), epochs=10, progress=False)
    assert np.array_equal(same.predict(X, k=2)[0], model.predict(X, k=2)[0])


def test_predict_shapes_padding_and_order(model, test_set):
    X, _ = test_set
    labels, scores = model.predict(X[:7], k=310)  # more than the 300 labels
    assert labels.shape == (7, 310) and labels.dtype == np.int64
    assert scores.shape == (7, 310) and scores.dtype == np.float32
    assert (labels[:, 300:] == -1).all() and (scores[:, 300:] == 0).all()
    assert all(sorted(row) == list(range(300)) for row in labels[:, :300].tolist())
    assert (np.diff(scores[:, :300], axis=1) <= 0).all()
    # An empty matrix gives empty answers.
    empty = model.predict(X[:0], k=4)
    assert empty[0].shape == (0, 4)


def test_sampled_mode_scores_candidates_exactly(model, test_set):
    X, _ = test_set
    exact_labels, exact_scores = model.predict(X, k=1)
    labels, scores = model.predict(X, k=1, mode="sampled", probes=300)
    # Every cluster searched: every label is a candidate, so the answer is the exact one.
    assert np.array_equal(labels, exact_labels)


def test_predict_proba_is_the_full_distribution(model, test_set):
    X, _ = test_set
    proba = model.predict_proba(X[:10])
    assert proba.shape == (10, 300) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-4)
    labels, scores = model.predict(X[:10], k=3)
    np.testing.assert_array_equal(np.take_along_axis(proba, labels, axis=1), scores)


def test_sigmoid_probabilities(train_set, test_set):
    X, Y = train_set
    model = glide.Model(loss="sigmoid", **SMALL).fit(X[:500], Y[:500], epochs=1,
                                                    progress=False)
    proba = model.predict_proba(test_set[0][:5])
    assert ((proba >= 0) & (proba <= 1)).all()


def test_config_as_a_dict(train_set):
    m = glide.Model(hidden=64, lr=0.01, seed=7, wide=False, lsh={"K": 4})
    c = m.config
    assert c["network"]["hidden"] == [64] and c["train"]["lr"] == 0.01
    assert c["network"]["seed"] == 7 and c["train"]["seed"] == 7
    assert c["network"]["wide"] == "off" and c["network"]["lsh"]["K"] == 4
    assert c["network"]["lsh"]["L"] == 8  # the rest of a section keeps its defaults
    X, Y = train_set
    m = glide.Model(**SMALL, network={"wide": "off"}).fit(X[:300], Y[:300], epochs=0.5,
                                                          batch=64, progress=False)
    c = m.config
    assert (c["network"]["num_features"], c["network"]["num_labels"]) == (2000, 300)
    assert c["train"]["batch"] == 64 and c["network"]["wide"] == "off"
    assert m.samples_trained == 150


def test_wide_auto_is_settled_by_the_first_fit(train_set):
    assert glide.Model().config["network"]["wide"] == "auto"
    assert glide.Model(wide=True).config["network"]["wide"] == "on"
    X, Y = train_set
    m = glide.Model(**SMALL).fit(X, Y, epochs=1, progress=False)
    assert m.config["network"]["wide"] in ("on", "tail")


def test_callback_sees_progress_and_stops_training(train_set, test_set):
    X, Y = train_set
    seen = []

    def stop_after_an_evaluation(progress):
        seen.append(progress)
        return progress["eval"] is None

    model = glide.Model(**SMALL).fit(X, Y, epochs=50, validation=test_set,
                                     callback=stop_after_an_evaluation)
    assert model.last_fit["stopped"]
    # The summary's keys are the stub's FitSummary; the setup before the first batch is apart.
    assert set(model.last_fit) == {"samples", "batches", "seconds", "eval_seconds", "loss",
                                   "samples_per_second", "stopped", "setup_seconds"}
    assert model.last_fit["setup_seconds"] > 0
    assert model.samples_trained < 50 * X.shape[0]
    evaluated = [p for p in seen if p["eval"] is not None]
    assert len(evaluated) == 1 and 0 <= evaluated[0]["eval"]["P@1"] <= 1
    # Evaluations during training also weigh labels by their rarity in the training data.
    assert all(0 <= evaluated[0]["eval"][f"PSP@{k}"] <= 1 for k in range(1, 6))
    assert evaluated[0]["epoch"] == pytest.approx(1.0)
    assert model.predict(test_set[0][:2], k=2)[0].shape == (2, 2)  # still usable


def test_valid_points_keep_the_best_validation(train_set):
    X, Y = train_set
    n = X.shape[0]
    held = [k * (n // 100) + n // 100 - 1 for k in range(100)]  # every (n / 100)-th row
    seen = []
    model = glide.Model(**SMALL).fit(X, Y, epochs=6, eval_every=2, valid_points=100,
                                     patience=3, callback=seen.append)
    fit = model.last_fit
    validations = [p for p in seen if p["validation"] is not None]
    assert len(validations) >= 2
    scores = [p["validation"]["P@1"] + p["validation"]["P@5"] for p in validations]
    assert [p["best"] for p in validations] == \
        [i == 0 or s > max(scores[:i]) for i, s in enumerate(scores)]
    best = fit["best_validation"]
    assert best["P@1"] + best["P@5"] == max(scores)
    assert model.samples_trained == fit["best_samples"]
    assert fit["patience_stopped"] == (scores.index(max(scores)) + 3 == len(scores) - 1)
    # The model scores on the held-out rows what its best validation scored.
    now = model.evaluate(X[held], [Y[i] for i in held] if isinstance(Y, list) else Y[held])
    assert (now["P@1"], now["P@5"]) == (best["P@1"], best["P@5"])
    with pytest.raises(glide.Error, match="best_by"):
        glide.Model(**SMALL).fit(X, Y, epochs=1, valid_points=100, best_by="p3")


def test_a_callback_exception_propagates_and_keeps_the_model(train_set):
    X, Y = train_set

    def fail(progress):
        raise ZeroDivisionError("from the callback")

    model = glide.Model(**SMALL)
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        model.fit(X, Y, epochs=5, callback=fail)
    assert 0 < model.samples_trained < 5 * X.shape[0]
    assert model.predict(X[:1], k=1)[0].shape == (1, 1)


def test_ctrl_c_stops_training_cleanly(train_set, tmp_path):
    X, Y = train_set
    model = glide.Model(**SMALL)
    started = threading.Event()

    def note_start(progress):
        started.set()

    def interrupt():
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    # max_seconds: if the interrupt were lost, training ends and the test fails (no hang).
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, epochs=10000, max_seconds=60, callback=note_start)
    assert 0 < model.samples_trained < 10000 * X.shape[0]
    model.save(tmp_path / "interrupted.glide")
    assert glide.Model.load(tmp_path / "interrupted.glide").samples_trained == \
        model.samples_trained


def test_fit_continues_training(train_set):
    X, Y = train_set
    model = glide.Model(**SMALL).fit(X[:200], Y[:200], epochs=1, progress=False)
    model.fit(X[:200], Y[:200], epochs=1, progress=False)
    assert model.samples_trained == 400


def test_quantize(model, test_set, tmp_path):
    X, Y = test_set
    path = tmp_path / "m.glide"
    model.save(path)
    fp32 = model.predict(X, k=1)[0]
    for precision in ("int8", "bf16"):
        q = glide.Model.load(path).quantize(precision)
        assert q.precision == precision
        assert (q.predict(X, k=1)[0] == fp32).mean() > 0.9
        with pytest.raises(glide.Error, match="already quantized"):
            q.quantize("int8")
    q = glide.Model.load(path).quantize("int8", "tensor")
    with pytest.raises(glide.Error, match="int8-quantized"):
        q.fit(X, Y, epochs=1, progress=False)
    q.save(tmp_path / "q.glide")
    assert glide.Model.load(tmp_path / "q.glide").precision == "int8"


def test_predictions_from_threads_equal_a_single_thread(model, test_set):
    X, _ = test_set
    reference = model.predict(X, k=5)
    results = [None] * 4

    def work(i):
        results[i] = model.predict(X, k=5)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for labels, scores in results:
        assert np.array_equal(labels, reference[0]) and np.array_equal(scores, reference[1])


def test_float32_int32_input_is_not_copied(model, test_set):
    from glide import _data
    X, _ = test_set
    assert X.dtype == np.float32 and X.indices.dtype == np.int32
    (indptr, indices, data), _ = _data.features(X)
    assert np.shares_memory(indices, X.indices) and np.shares_memory(data, X.data)


def test_the_callback_may_read_the_model_but_not_use_it(train_set):
    X, Y = train_set
    model = glide.Model(**SMALL)
    seen = []

    def read_then_predict(progress):
        seen.append((model.num_labels, model.config["train"]["epochs"]))
        model.predict(X[:1])

    with pytest.raises(glide.Error, match="Model.predict: not allowed in fit"):
        model.fit(X, Y, epochs=3, callback=read_then_predict)
    assert seen == [(300, 3.0)]
    assert model.predict(X[:1], k=1)[0].shape == (1, 1)  # fine once fit() has returned


def test_explicit_zeros_of_an_indicator_are_not_labels(model, test_set):
    X, Y = test_set
    padded = Y.copy().tolil()
    padded[0, 299] = 1  # a label row 0 does not have...
    padded = padded.tocsr()
    padded.data[padded.indices == 299] = 0  # ...stored as an explicit zero
    assert padded.nnz == Y.nnz + 1
    assert model.evaluate(X, padded) == model.evaluate(X, Y)
