"""Shared fixtures: a tiny synthetic dataset made by `glide data synth` (the CLI is the built
one, $GLIDE_CLI) and a small model trained on it once."""
import os
import shutil
import subprocess

import pytest

import glide

# Small and quick: 32 hidden units, small LSH tables, 2 threads.
SMALL = dict(hidden=[32], lsh={"range_pow": 8}, threads=2)
EPOCHS = 2


def cli_path():
    path = os.environ.get("GLIDE_CLI") or shutil.which("glide")
    return path if path and os.access(path, os.X_OK) else None


def run_cli(*args):
    path = cli_path()
    if path is None:
        pytest.skip("the glide command line is not built (GLIDE_CLI unset)")
    done = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, f"glide {' '.join(map(str, args))}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    run_cli("data", "synth", "--preset", "tiny", "--seed", "3", "--threads", "2", "-o",
            d / "train.txt", "--test-points", "60", "--test-output", d / "test.txt")
    return d


@pytest.fixture(scope="session")
def train_set(data_dir):
    return glide.read_dataset(data_dir / "train.txt")


@pytest.fixture(scope="session")
def test_set(data_dir):
    return glide.read_dataset(data_dir / "test.txt")


@pytest.fixture(scope="session")
def model(train_set):
    X, Y = train_set
    return glide.Model(**SMALL).fit(X, Y, epochs=EPOCHS, progress=False)
