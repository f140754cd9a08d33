#!/usr/bin/env python3
"""Calls a running `glide serve` from Python with the standard library only (urllib): sends the
rows of a dataset file in batches to the v1 predict endpoint, and with --check compares every
answer with the same model file loaded in Python.

    glide serve --model example=glide-example/model.glide --port 8080 &
    python3 examples/python/serve_client.py --url http://127.0.0.1:8080 --model example \
        --data glide-example/test.txt [--check glide-example/model.glide]
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request

import glide


def predict(url: str, model: str, rows, k: int) -> list:
    """One v1 request: `rows` are (indices, values) pairs; returns the answers' label lists."""
    body = {"instances": [{"indices": ids, "values": vals} for ids, vals in rows], "k": k}
    request = urllib.request.Request(f"{url}/v1/models/{model}:predict",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["predictions"]
    except urllib.error.HTTPError as e:  # the server says what is wrong in {"error": ...}
        raise SystemExit(f"{e.code} from the server: {e.read().decode()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--model", required=True, help="the model's name on the server")
    parser.add_argument("--data", required=True, help="a dataset file whose rows are sent")
    parser.add_argument("--batch", type=int, default=16, help="instances per request")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--check", help="the served model file: compare the answers with it")
    args = parser.parse_args()

    X, _ = glide.read_dataset(args.data)
    local = glide.Model.load(args.check) if args.check else None
    answers = mismatches = 0
    started = time.perf_counter()
    for first in range(0, X.shape[0], args.batch):
        block = X[first:first + args.batch]
        rows = [(block[r].indices.tolist(), block[r].data.tolist()) for r in range(block.shape[0])]
        served = predict(args.url, args.model, rows, args.k)
        answers += len(served)
        if local is not None:
            labels, _ = local.predict(block, k=args.k)
            for got, want in zip(served, labels.tolist()):
                mismatches += got["labels"] != [w for w in want if w >= 0]
    seconds = time.perf_counter() - started
    print(f"{answers} answers in {seconds:.2f} s ({answers / seconds:.0f}/s)"
          + (f", {mismatches} differ from the local model" if local is not None else ""))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
