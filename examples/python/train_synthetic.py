#!/usr/bin/env python3
"""Trains a glide model from Python on a synthetic dataset that glide itself generates
(`glide data synth`), evaluates it, predicts, and saves a model file for `glide serve`.

    python3 examples/python/train_synthetic.py [--glide build/apps/glide] [--out DIR]
        [--preset tiny|default] [--epochs 2]

Needs the glide module (PYTHONPATH=build/python after a build, or `cmake --install`) and the
glide command line (for `glide data synth`).
"""
import argparse
import os
import shutil
import subprocess
import sys

import glide


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glide", default=shutil.which("glide") or "build/apps/glide",
                        help="the glide command line (for `glide data synth`)")
    parser.add_argument("--out", default="glide-example", help="folder for data and model")
    parser.add_argument("--preset", default="tiny", help="glide data synth preset")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    train_path = os.path.join(args.out, "train.txt")
    test_path = os.path.join(args.out, "test.txt")
    # 1. Data: glide's planted synthetic benchmark (Zipf labels, a feature profile per label).
    synth = subprocess.run([args.glide, "data", "synth", "--preset", args.preset, "--seed", "1",
                            "-o", train_path, "--test-points", "500", "--test-output", test_path],
                           capture_output=True, text=True)
    if synth.returncode != 0:
        sys.exit(f"glide data synth failed: {synth.stderr}")
    X, Y = glide.read_dataset(train_path)  # scipy CSR features, CSR label indicator
    X_test, Y_test = glide.read_dataset(test_path)
    print(f"data: {X.shape[0]} training points, {X.shape[1]} features, {Y.shape[1]} labels")

    # 2. A model: every setting optional; the dimensions come from the data.
    model = glide.Model(hidden=[64], sampling="lsh", lsh={"range_pow": 10},
                        threads=args.threads)

    # 3. Train, watching the test P@1 after each epoch (the callback could stop early).
    def report(progress):
        if progress["eval"] is not None:
            print(f"  epoch {progress['epoch']:.1f}: test P@1 {progress['eval']['P@1']:.3f}, "
                  f"loss {progress['loss']:.3f}")

    model.fit(X, Y, epochs=args.epochs, validation=(X_test, Y_test), callback=report)
    print(f"trained {model.last_fit['samples']} samples in {model.last_fit['seconds']:.2f} s")

    # 4. Evaluate and predict.
    metrics = model.evaluate(X_test, Y_test, k=5)
    print("test:", ", ".join(f"{name} {metrics[name]:.3f}"
                             for name in ("P@1", "P@3", "P@5", "nDCG@5")))
    labels, scores = model.predict(X_test[:3], k=3)
    for row in range(3):
        truth = Y_test[row].indices.tolist()
        print(f"  point {row}: labels {labels[row].tolist()} scores "
              f"{[round(float(s), 3) for s in scores[row]]} (true {truth})")

    # 5. Save: `glide eval`, `glide predict` and `glide serve` load the file.
    model_path = os.path.join(args.out, "model.glide")
    model.save(model_path)
    print(f"saved {model_path}; serve it with: {args.glide} serve --model example={model_path} "
          f"--port 8080")
    return 0


if __name__ == "__main__":
    sys.exit(main())
