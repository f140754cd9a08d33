"""The module's surface: the type stub lists what the module has, help() shows docstrings, and
fit() draws its progress line when asked."""
import ast
import pathlib

import glide


def stub_names(tree, cls=None):
    body = tree.body
    if cls:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    names = set()
    for n in body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.AnnAssign):
            names.add(n.target.id)
    return {n for n in names if not n.startswith("_") or n == "__version__"}


def test_the_stub_lists_the_public_api():
    stub = ast.parse(pathlib.Path(glide.__file__).with_suffix(".pyi").read_text())
    assert set(glide.__all__) <= stub_names(stub)
    public = {n for n in dir(glide.Model) if not n.startswith("_")}
    assert stub_names(stub, "Model") == public | {"last_fit"}


def test_docstrings():
    for name in ("fit", "predict", "predict_proba", "evaluate", "save", "load", "quantize"):
        assert getattr(glide.Model, name).__doc__, name
    assert "settings" in glide.Model.__doc__ and glide.__doc__


def test_progress_line(train_set, capsys):
    X, Y = train_set
    glide.Model(hidden=[8], lsh={"range_pow": 6}, threads=2).fit(X[:300], Y[:300], epochs=1,
                                                                progress=True)
    err = capsys.readouterr().err
    assert "epoch" in err and "trained 300 samples" in err and err.endswith("\n")
    glide.Model(hidden=[8], lsh={"range_pow": 6}, threads=2).fit(X[:300], Y[:300], epochs=1,
                                                                progress=False)
    assert capsys.readouterr().err == ""
