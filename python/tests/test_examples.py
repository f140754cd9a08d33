"""The examples in examples/python run: training on glide's synthetic data, then a client loop
against a running `glide serve` of the saved model, whose answers equal the model's in Python."""
import os
import pathlib
import subprocess
import sys
import time

from conftest import cli_path, run_cli

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"


def run_example(name, *args):
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                          capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_train_then_serve(tmp_path):
    run_cli("--help")  # skips without the command line
    out = run_example("train_synthetic.py", "--glide", cli_path(), "--out", tmp_path,
                      "--epochs", 1, "--threads", 2)
    assert "test: P@1" in out and (tmp_path / "model.glide").exists()

    log = open(tmp_path / "serve.out", "w")
    server = subprocess.Popen([cli_path(), "serve", "--model", f"example={tmp_path}/model.glide",
                               "--port", "0", "--threads", "2"], stdout=log,
                              stderr=subprocess.DEVNULL)
    try:
        url = None
        for _ in range(100):
            text = (tmp_path / "serve.out").read_text()
            if "listening on" in text:
                url = text.split("listening on ")[1].split()[0]
                break
            time.sleep(0.1)
        assert url, "the server printed no address"
        out = run_example("serve_client.py", "--url", url, "--model", "example", "--data",
                          tmp_path / "test.txt", "--check", tmp_path / "model.glide")
        assert "500 answers" in out and "0 differ" in out
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
