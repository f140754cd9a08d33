#!/usr/bin/python3
"""Peer baselines for glide's time-to-accuracy comparison (driven by run.sh).

Subcommands:
  convert    XC text (glide data convert ... -o X.txt) -> .npz tensors and fastText files
  split      split an XC text file into train / test parts (the text task)
  head       the first N points of a converted dataset, as XC text
  corpus     plain prose for the text task (one paragraph per line, lower case, words only)
  fasttext   train fastText (supervised, hs or ns) for some epochs, evaluate, append to peers.json
  torch      PyTorch baselines (sampled softmax with shared negatives + SparseAdam, or full
             softmax), evaluated after every epoch (and at the time cap), appended to peers.json
  napkinxc   train napkinXC (`nxc train`, its defaults: a probabilistic label tree), predict the
             test points (`nxc test`), append to peers.json
  measure    run a command, print its wall seconds and peak RSS (JSON) to a file

Python packages: only numpy and torch from Debian (python3-numpy, python3-torch). napkinXC is
not packaged: build its `nxc` binary from source (docs/benchmarks.md, "Time to accuracy").
P@k is computed the way glide computes it: hits among the top k predicted labels / k, averaged
over the first --eval-points test points that have labels.
"""
import argparse
import collections
import glob
import gzip
import json
import lzma
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def log(*a):
    print("peers:", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- XC text I/O

def read_xc(path):
    """XC text: header 'POINTS FEATURES LABELS', then 'l1,l2 f:v f:v' per point (labels may be
    empty). Returns dict(indices, offsets, values, label_indices, label_offsets, F, L)."""
    with open(path, "r") as f:
        header = f.readline().split()
        n, nf, nl = int(header[0]), int(header[1]), int(header[2])
        feat_tokens, lab_tokens = [], []
        nnz = np.zeros(n, dtype=np.int64)
        nlab = np.zeros(n, dtype=np.int64)
        i = 0
        for line in f:
            line = line.rstrip("\n")
            if i >= n:
                if line.strip():
                    raise SystemExit(f"{path}: more points than the header's {n}")
                continue
            if line and not line[0].isspace() and ":" not in line.split(" ", 1)[0]:
                labels, _, feats = line.partition(" ")
            else:
                labels, feats = "", line.strip()
            if labels:
                ls = labels.split(",")
                lab_tokens.extend(ls)
                nlab[i] = len(ls)
            if feats:
                fs = feats.split()
                feat_tokens.extend(fs)
                nnz[i] = len(fs)
            i += 1
    if i != n:
        raise SystemExit(f"{path}: {i} points, the header says {n}")
    fv = np.array(" ".join(feat_tokens).replace(":", " ").split(), dtype=np.float64).reshape(-1, 2)
    return dict(
        indices=fv[:, 0].astype(np.int64), values=fv[:, 1].astype(np.float32),
        offsets=np.concatenate([[0], np.cumsum(nnz)]).astype(np.int64),
        label_indices=np.array(lab_tokens, dtype=np.int64),
        label_offsets=np.concatenate([[0], np.cumsum(nlab)]).astype(np.int64),
        F=nf, L=nl)


def write_xc(path, d, rows):
    with open(path, "w") as f:
        f.write(f"{len(rows)} {d['F']} {d['L']}\n")
        for r in rows:
            a, b = d["label_offsets"][r], d["label_offsets"][r + 1]
            labels = ",".join(str(x) for x in d["label_indices"][a:b])
            a, b = d["offsets"][r], d["offsets"][r + 1]
            feats = " ".join(f"{i}:{v:.6g}" for i, v in zip(d["indices"][a:b], d["values"][a:b]))
            f.write(f"{labels} {feats}\n".lstrip(" ") if labels else f" {feats}\n")


def load_npz(path):
    z = np.load(path)
    d = {k: z[k] for k in z.files}
    d["F"], d["L"] = int(d["F"]), int(d["L"])
    return d


def num_points(d):
    return len(d["offsets"]) - 1


# ---------------------------------------------------------------- fastText format

def fasttext_tokens(idx, vals, encoding, max_repeat):
    """Feature ids become words 'f<ID>'. fastText's input is the average of its words'
    embeddings, so it cannot take a value per word: 'once' writes each feature word once (a bag
    of words; the tf-idf weights are lost); 'repeat' writes it round(v / median v of the point)
    times, between 1 and max_repeat, so the averaging weighs words roughly as the tf-idf values
    do."""
    if encoding == "once" or len(vals) == 0:
        return [f"f{i}" for i in idx]
    med = float(np.median(vals))
    reps = np.clip(np.rint(vals / med if med > 0 else 1), 1, max_repeat).astype(int)
    out = []
    for i, r in zip(idx, reps):
        out.extend([f"f{i}"] * int(r))
    return out


def write_fasttext(d, train_path, features_path, encoding, max_repeat):
    """train_path: '__label__A __label__B words...' (supervised input); features_path: the words
    only (for 'fasttext predict')."""
    with open(train_path, "w") if train_path else open(os.devnull, "w") as ft, \
            open(features_path, "w") if features_path else open(os.devnull, "w") as fw:
        for r in range(num_points(d)):
            a, b = d["offsets"][r], d["offsets"][r + 1]
            words = " ".join(fasttext_tokens(d["indices"][a:b], d["values"][a:b], encoding,
                                             max_repeat)) or "EMPTY"
            a, b = d["label_offsets"][r], d["label_offsets"][r + 1]
            labels = " ".join(f"__label__{x}" for x in d["label_indices"][a:b])
            if train_path and labels:  # fastText skips unlabelled lines anyway
                ft.write(f"{labels} {words}\n")
            fw.write(words + "\n")


def cmd_convert(a):
    t = time.time()
    d = read_xc(a.xc)
    np.savez(a.npz, indices=d["indices"], offsets=d["offsets"], values=d["values"],
             label_indices=d["label_indices"], label_offsets=d["label_offsets"],
             F=d["F"], L=d["L"])
    if a.fasttext or a.fasttext_features:
        write_fasttext(d, a.fasttext, a.fasttext_features, a.ft_encoding, a.ft_max_repeat)
    log(f"converted {a.xc}: {num_points(d)} points in {time.time() - t:.1f} s")


def cmd_split(a):
    d = read_xc(a.xc)
    n = num_points(d)
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(n)
    n_test = min(a.test_points, n // 5) if a.test_points else n // 10
    write_xc(a.test, d, sorted(order[:n_test]))
    write_xc(a.train, d, sorted(order[n_test:]))
    log(f"split {a.xc}: {n - n_test} train, {n_test} test points")


def cmd_head(a):
    d = load_npz(a.npz)
    write_xc(a.output, d, range(min(a.points, num_points(d))))


def cmd_corpus(a):
    paths = []
    for p in a.inputs:
        if os.path.isdir(p):
            paths += sorted(os.path.join(p, x) for x in os.listdir(p))
        else:
            paths.append(p)
    paragraphs = []
    for p in paths:
        if not os.path.isfile(p) or os.path.islink(p) and not os.path.exists(p):
            continue
        with open(p, "r", errors="replace") as f:
            text = f.read()
        for para in re.split(r"\n\s*\n", text):
            words = re.findall(r"[a-z]+(?:'[a-z]+)?", para.lower())
            if len(words) >= 2:
                paragraphs.append(" ".join(words))
    with open(a.output, "w") as f:
        f.write("\n".join(paragraphs) + "\n")
    log(f"corpus {a.output}: {len(paragraphs)} paragraphs, "
        f"{sum(len(p.split()) for p in paragraphs)} words from {len(paths)} files")


def read_packages(path):
    """The stanzas of a Debian Packages file (plain, .gz, .xz or .lz4) as dicts."""
    if path.endswith(".lz4"):
        text = subprocess.run(["lz4cat", path], check=True, capture_output=True).stdout
        lines = text.decode("utf-8", "replace").splitlines()
    else:
        opener = gzip.open if path.endswith(".gz") else lzma.open if path.endswith(".xz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    stanza, last = {}, None
    for line in lines + [""]:
        if not line.strip():
            if stanza:
                yield stanza
            stanza, last = {}, None
        elif line[0] in " \t" and last:
            stanza[last] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            stanza[key], last = value.strip(), key


def cmd_debtags(a):
    """Real data from the apt lists, as XC text. --labels tags: each tagged package's debtags
    from the words of its one-line description, its section and the names of the packages it
    depends on (features, counted); section: each package's section (one label) from its words
    and dependencies; depends: the packages each package depends on from its words and section.
    Features and labels of a single package are dropped."""
    paths = a.packages or sorted(glob.glob("/var/lib/apt/lists/*_main_binary-*_Packages*"))
    paths = [p for p in paths if "-security_" not in p and "-updates_" not in p] or paths
    if not paths:
        sys.exit("peers.py debtags: no Packages file (give --packages, or run apt update)")
    packages = {}
    for path in paths:
        try:
            for st in read_packages(path):
                if "Package" in st and ("Tag" in st or a.labels != "tags"):
                    packages.setdefault(st["Package"], st)
        except (OSError, EOFError, lzma.LZMAError, subprocess.CalledProcessError) as e:
            sys.exit(f"peers.py debtags: cannot read {path}: {e}")
    if not packages:
        sys.exit(f"peers.py debtags: no package {'with tags ' if a.labels == 'tags' else ''}"
                 f"in {', '.join(paths)}")
    points = []
    for name in sorted(packages):
        st = packages[name]
        words = ["w:" + w for w in re.findall(r"[a-z0-9+]+", st.get("Description", "").lower())]
        section = st.get("Section", "")
        deps = [d.strip().split(" ")[0].split(":")[0]
                for d in re.split(r"[,|]", st.get("Depends", ""))]
        deps = [d for d in deps if d]
        if a.labels == "tags":
            tags = sorted({t.strip() for t in st["Tag"].split(",") if t.strip()})
            points.append((words + ["s:" + section] + ["d:" + d for d in deps], tags))
        elif a.labels == "section":
            labels = [section.split("/")[-1]] if section else []
            points.append((words + ["d:" + d for d in deps], labels))
        else:
            points.append((words + ["s:" + section], sorted(set(deps))))
    feature_df = collections.Counter(f for feats, _ in points for f in set(feats))
    label_df = collections.Counter(t for _, tags in points for t in tags)
    feature_id, label_id, rows = {}, {}, []
    for feats, tags in points:
        counts = collections.Counter(f for f in feats if feature_df[f] >= 2)
        labels = sorted({label_id.setdefault(t, len(label_id)) for t in tags if label_df[t] >= 2})
        values = {feature_id.setdefault(f, len(feature_id)): n for f, n in counts.items()}
        if labels and values:
            rows.append((labels, values))
    with open(a.output, "w") as f:
        f.write(f"{len(rows)} {len(feature_id)} {len(label_id)}\n")
        for labels, values in rows:
            f.write(",".join(map(str, labels)) + " " +
                    " ".join(f"{k}:{v}" for k, v in sorted(values.items())) + "\n")
    log(f"debtags {a.output}: {len(rows)} packages, {len(feature_id)} features, "
        f"{len(label_id)} labels ({a.labels}) from {', '.join(paths)}")


# ---------------------------------------------------------------- metrics and results

def inverse_propensity(train_npz, labels, a=0.55, b=1.5):
    """Each of `labels` labels' inverse propensity from its count N_l among the n training
    points, as glide eval --train weighs it (Jain et al. 2016): 1 + C (N_l + B)^-A,
    C = (ln n - 1)(B + 1)^A; a label the training points lack counts 0."""
    z = np.load(train_npz)  # only the label arrays are read
    n = len(z["label_offsets"]) - 1
    counts = np.bincount(z["label_indices"], minlength=max(labels, int(z["L"])))
    counts = counts.astype(np.float64)
    c = max(0.0, np.log(n) - 1) * (b + 1) ** a
    return 1 + c * (counts + b) ** -a


def precision_at(pred, d, points, inverse):
    """pred: list of top-k label lists for test points 0..; over the labelled points, P@1 and
    P@5, and PSP@1 and PSP@5 with `inverse` (inverse_propensity), normalised as glide and
    pyxclib do: the weighted hits summed over the points, over the same sum for each point's own
    labels ranked by weight."""
    hits1 = hits5 = counted = 0
    gained, best = [0.0, 0.0], [0.0, 0.0]
    for r in range(min(points, num_points(d))):
        a, b = d["label_offsets"][r], d["label_offsets"][r + 1]
        if a == b:
            continue
        truth = set(d["label_indices"][a:b].tolist())
        p = pred[r]
        counted += 1
        hits1 += 1 if p[:1] and p[0] in truth else 0
        hits5 += sum(1 for x in p[:5] if x in truth)
        own = sorted((inverse[x] for x in truth), reverse=True)
        for i, k in enumerate((1, 5)):
            gained[i] += sum(inverse[x] for x in p[:k] if x in truth)
            best[i] += sum(own[:k])
    if not counted:
        return dict(p1=0.0, p5=0.0, psp1=0.0, psp5=0.0)
    return dict(p1=hits1 / counted, p5=hits5 / (5 * counted),
                psp1=float(gained[0] / best[0]), psp5=float(gained[1] / best[1]))


def append_result(path, rec):
    results = []
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results.append(rec)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    log(f"{rec['tool']} ({rec['config']}), {rec['epochs']:g} epochs: {rec['train_seconds']:.1f} s, "
        f"P@1 {rec['p1']:.4f}, P@5 {rec['p5']:.4f}, PSP@5 {rec['psp5']:.4f}, "
        f"{rec['samples_per_second']:.0f} samples/s")


def run_measured(cmd, **kw):
    """Runs cmd; returns (returncode, wall seconds, peak RSS MB of that child)."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.monotonic() - t, ru.ru_maxrss / 1024.0


def cmd_measure(a):
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        raise SystemExit("measure: no command")
    rc, wall, rss = run_measured(cmd)
    with open(a.output, "w") as f:
        json.dump({"rc": rc, "wall_seconds": wall, "peak_rss_mb": rss}, f)
    sys.exit(rc)


# ---------------------------------------------------------------- fastText

def cmd_fasttext(a):
    if a.epochs != int(a.epochs) or a.epochs < 1:
        raise SystemExit(f"fastText takes whole epochs, got {a.epochs:g}")
    a.epochs = int(a.epochs)
    test = load_npz(a.test_npz)
    n_train = sum(1 for _ in open(a.train))
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        model = os.path.join(tmp, "model")
        cmd = [a.fasttext_bin, "supervised", "-input", a.train, "-output", model,
               "-loss", a.loss, "-dim", str(a.dim), "-epoch", str(a.epochs), "-lr", str(a.lr),
               "-thread", str(a.threads), "-minCount", "1", "-wordNgrams", "1", "-bucket", "0",
               "-verbose", "1"]
        if a.loss == "ns":
            cmd += ["-neg", str(a.neg)]
        log(" ".join(cmd))
        rc, wall, rss = run_measured(cmd, stdout=subprocess.DEVNULL)
        if rc != 0:
            raise SystemExit(f"fasttext failed (exit {rc}): {' '.join(cmd)}")
        t = time.monotonic()
        out = subprocess.run([a.fasttext_bin, "predict", model + ".bin", a.test_features, "5"],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
        pred = [[int(w[len("__label__"):]) for w in line.split() if w.startswith("__label__")]
                for line in out.split("\n")]
        scores = precision_at(pred, test, a.eval_points, inverse_propensity(a.train_npz, test["L"]))
        log(f"fastText predict: {time.monotonic() - t:.1f} s")
    append_result(a.results, dict(
        tool="fastText", config=f"{a.loss} dim{a.dim} lr{a.lr:g}" +
        (f" neg{a.neg}" if a.loss == "ns" else ""), epochs=a.epochs, train_seconds=wall,
        **scores, samples=a.epochs * n_train, samples_per_second=a.epochs * n_train / wall,
        peak_rss_mb=rss, threads=a.threads, eval_points=min(a.eval_points, num_points(test)),
        encoding=a.encoding))


# ---------------------------------------------------------------- napkinXC

def xc_points(path):
    """The point count in an XC text file's header ('POINTS FEATURES LABELS')."""
    with open(path) as f:
        header = f.readline().split()
    if len(header) != 3:
        raise SystemExit(f"{path}: expected an XC text header 'POINTS FEATURES LABELS'")
    return int(header[0])


def read_nxc_predictions(path):
    """'label:score label:score ...' per line, one line per input point, in input order; returns
    the labels of each line, highest score first."""
    pred = []
    with open(path) as f:
        for line in f:
            pairs = [tok.rsplit(":", 1) for tok in line.split()]
            pairs.sort(key=lambda lv: -float(lv[1]))
            pred.append([int(lv[0]) for lv in pairs])
    return pred


def cmd_napkinxc(a):
    """napkinXC reads XC text as it is (header 'POINTS FEATURES LABELS', then 'l1,l2 f:v ...';
    0-based ids are fine: it shifts features by 2 internally). The training time is the wall time
    of `nxc train` (reading its input included, as for fastText). Prediction is timed twice: the
    wall time of `nxc test` on the scored points (loading the model included), and napkinXC's own
    "Test real time" (reading the points, predicting, writing the predictions: no model loading).
    Its own P@1 / P@5 are logged beside ours as a check of the format and the scoring."""
    test = load_npz(a.test_npz)
    n_train = xc_points(a.train)
    version = subprocess.run([a.nxc_bin, "version"], stdout=subprocess.PIPE, text=True,
                             check=False).stdout.strip()
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        model = os.path.join(tmp, "model")
        # Its defaults, with the seed fixed (napkinXC seeds from the clock otherwise).
        cmd = [a.nxc_bin, "train", "-i", a.train, "-o", model, "-t", str(a.threads),
               "--seed", str(a.seed)] + a.nxc_args
        log(" ".join(cmd))
        with open(os.path.join(tmp, "train.log"), "w") as out:
            rc, wall, rss = run_measured(cmd, stdout=out, stderr=subprocess.STDOUT)
        if rc != 0:
            raise SystemExit(f"nxc train failed (exit {rc}): {' '.join(cmd)}\n" +
                             open(os.path.join(tmp, "train.log")).read()[-2000:])
        pred_path = os.path.join(tmp, "pred.txt")
        cmd = [a.nxc_bin, "test", "-i", a.test, "-o", model, "-t", str(a.threads),
               "--topK", "5", "--prediction", pred_path, "--measures", "p@1,p@5",
               "--metricsPrecision", "6"]
        log(" ".join(cmd))
        test_log_path = os.path.join(tmp, "test.log")
        with open(test_log_path, "w") as out:
            rc, test_wall, test_rss = run_measured(cmd, stdout=out, stderr=subprocess.STDOUT)
        test_log = open(test_log_path).read()
        if rc != 0:
            raise SystemExit(f"nxc test failed (exit {rc}): {' '.join(cmd)}\n" + test_log[-2000:])
        pred = read_nxc_predictions(pred_path)
    scored = min(a.eval_points, num_points(test))
    if len(pred) < scored:
        raise SystemExit(f"nxc test predicted {len(pred)} points, {scored} are scored")
    scores = precision_at(pred, test, scored, inverse_propensity(a.train_npz, test["L"]))
    # napkinXC's own figures, to cross-check the scoring and for the prediction time alone.
    own = dict(re.findall(r"^\s*(P@1|P@5|Test real time \(s\)):\s*([0-9.eE+-]+)\s*$",
                          test_log, re.M))
    predict_seconds = float(own["Test real time (s)"]) if "Test real time (s)" in own else None
    log(f"nxc test: {test_wall:.1f} s wall for {scored} points"
        + (f" ({predict_seconds:.2f} s predicting)" if predict_seconds is not None else "")
        + (f"; its own P@1 {own['P@1']}, P@5 {own['P@5']}" if "P@1" in own else ""))
    append_result(a.results, dict(
        tool="napkinXC", config=" ".join(a.nxc_args) or "plt defaults", epochs=1,
        train_seconds=wall, **scores, samples=n_train, samples_per_second=n_train / wall,
        peak_rss_mb=rss, threads=a.threads, eval_points=scored, version=version,
        predict_wall_seconds=test_wall, predict_seconds=predict_seconds,
        predict_ms_per_point=1000 * (test_wall if predict_seconds is None else predict_seconds)
        / max(scored, 1), predict_peak_rss_mb=test_rss))


# ---------------------------------------------------------------- PyTorch

def blas_library():
    """The BLAS this process actually loaded (Debian's torch: reference BLAS unless told)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return ",".join(sorted(os.path.basename(x) for x in libs)) or "unknown"
    except OSError:
        return "unknown"


def cmd_torch(a):
    import torch
    import torch.nn as nn
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train, test = load_npz(a.train_npz), load_npz(a.test_npz)
    n, F, L = num_points(train), max(train["F"], test["F"]), max(train["L"], test["L"])
    label_weights = inverse_propensity(a.train_npz, L)  # PSP@k's
    H = a.hidden
    dense = a.mode == "full"
    negatives = 0 if dense else (a.negatives or max(1, int(np.ceil(0.005 * L))))
    negatives = min(negatives, L)
    config = ("full softmax Adam" if dense else f"sampled {negatives} neg SparseAdam") + \
        f" lr{a.lr:g}"
    log(f"torch {torch.__version__}, {a.threads} threads: {config}; {n} points, {F} features, "
        f"{L} labels")

    emb = nn.EmbeddingBag(F, H, mode="sum", sparse=True)
    nn.init.normal_(emb.weight, 0.0, 1.0 / np.sqrt(H))
    b1 = nn.Parameter(torch.zeros(H))
    bound = 1.0 / np.sqrt(H)
    out_w = nn.Embedding(L, H, sparse=not dense)
    nn.init.uniform_(out_w.weight, -bound, bound)
    out_b = nn.Embedding(L, 1, sparse=not dense)
    nn.init.zeros_(out_b.weight)
    sparse_params = [emb.weight] + ([] if dense else [out_w.weight, out_b.weight])
    dense_params = [b1] + ([out_w.weight, out_b.weight] if dense else [])
    opt_sparse = torch.optim.SparseAdam(sparse_params, lr=a.lr)
    opt_dense = torch.optim.Adam(dense_params, lr=a.lr)

    idx = torch.from_numpy(train["indices"])
    off = torch.from_numpy(train["offsets"])
    val = torch.from_numpy(train["values"])
    lab = torch.from_numpy(train["label_indices"])
    loff = torch.from_numpy(train["label_offsets"])
    rng = np.random.default_rng(a.seed)

    def batch_inputs(d_idx, d_off, d_val, rows):
        starts, ends = d_off[rows], d_off[rows + 1]
        lens = ends - starts
        pos = torch.repeat_interleave(starts - torch.cumsum(lens, 0) + lens, lens) + \
            torch.arange(int(lens.sum()))
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(lens, 0)[:-1]])
        return d_idx[pos], offsets, d_val[pos]

    def hidden(i, o, v):
        return torch.relu(emb(i, o, per_sample_weights=v) + b1)

    def evaluate():
        t = time.monotonic()
        m = min(a.eval_points, num_points(test))
        tidx, toff, tval = (torch.from_numpy(test[k]) for k in ("indices", "offsets", "values"))
        pred = []
        with torch.no_grad():
            for s in range(0, m, 128):
                rows = torch.arange(s, min(m, s + 128))
                h = hidden(*batch_inputs(tidx, toff, tval, rows))
                logits = torch.addmm(out_b.weight[:, 0], h, out_w.weight.t())
                pred += torch.topk(logits, 5, dim=1).indices.tolist()
        scores = precision_at(pred, test, m, label_weights)
        log(f"evaluated {m} points in {time.monotonic() - t:.1f} s: P@1 {scores['p1']:.4f}")
        return scores

    train_seconds = 0.0
    samples = 0
    epochs_done = 0.0
    last_report = time.monotonic()
    stop = False
    for epoch in range(int(np.ceil(a.epochs))):
        order = torch.from_numpy(rng.permutation(n))
        end = n if epoch + 1 <= a.epochs else int(round((a.epochs - epoch) * n))
        t0 = time.monotonic()
        for s in range(0, end, a.batch):
            rows = order[s:min(end, s + a.batch)]
            i, o, v = batch_inputs(idx, off, val, rows)
            h = hidden(i, o, v)
            ls, le = loff[rows], loff[rows + 1]
            counts = le - ls
            lpos = torch.repeat_interleave(ls - torch.cumsum(counts, 0) + counts, counts) + \
                torch.arange(int(counts.sum()))
            blabels = lab[lpos]
            brow = torch.repeat_interleave(torch.arange(len(rows)), counts)
            if dense:
                logits = torch.addmm(out_b.weight[:, 0], h, out_w.weight.t())
                cols = blabels
            else:
                neg = torch.from_numpy(rng.integers(0, L, negatives))
                cand, inverse = torch.unique(torch.cat([blabels, neg]), return_inverse=True)
                cols = inverse[:len(blabels)]
                logits = torch.addmm(out_b(cand)[:, 0], h, out_w(cand).t())
            # Softmax cross-entropy against the uniform distribution over each point's labels.
            logp = torch.log_softmax(logits, dim=1)
            weight = (1.0 / counts.clamp(min=1).float())[brow]
            loss = -(logp[brow, cols] * weight).sum() / len(rows)
            opt_sparse.zero_grad()
            opt_dense.zero_grad()
            loss.backward()
            opt_sparse.step()
            opt_dense.step()
            samples += len(rows)
            now = time.monotonic()
            if now - last_report > 10:
                last_report = now
                log(f"epoch {epoch + s / n:.2f}, loss {loss.item():.3f}, "
                    f"{samples / (train_seconds + now - t0):.0f} samples/s")
            if a.max_seconds and train_seconds + now - t0 >= a.max_seconds:
                stop = True
                epochs_done = epoch + (s + len(rows)) / n
                break
        train_seconds += time.monotonic() - t0
        if not stop:
            epochs_done = epoch + end / n
        scores = evaluate()
        append_result(a.results, dict(
            tool="PyTorch", config=config, epochs=round(epochs_done, 4),
            train_seconds=train_seconds, **scores, samples=samples,
            samples_per_second=samples / train_seconds,
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            threads=a.threads, eval_points=min(a.eval_points, num_points(test)),
            hidden=H, batch=a.batch, negatives=negatives, capped=stop, blas=blas_library()))
        if stop:
            break


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert")
    c.add_argument("xc")
    c.add_argument("--npz", required=True)
    c.add_argument("--fasttext")
    c.add_argument("--fasttext-features")
    c.add_argument("--ft-encoding", choices=["once", "repeat"], default="repeat")
    c.add_argument("--ft-max-repeat", type=int, default=3)
    c.set_defaults(fn=cmd_convert)
    c = sub.add_parser("split")
    c.add_argument("xc")
    c.add_argument("--train", required=True)
    c.add_argument("--test", required=True)
    c.add_argument("--test-points", type=int, default=0)
    c.add_argument("--seed", type=int, default=1)
    c.set_defaults(fn=cmd_split)
    c = sub.add_parser("head", help="the first N points of an .npz as XC text")
    c.add_argument("npz")
    c.add_argument("--points", type=int, required=True)
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(fn=cmd_head)
    c = sub.add_parser("corpus")
    c.add_argument("inputs", nargs="+")
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(fn=cmd_corpus)
    c = sub.add_parser("debtags", help="Debian's package tags from the apt lists, as XC text")
    c.add_argument("--packages", nargs="*", help="Packages files (default: the apt lists')")
    c.add_argument("--labels", choices=("tags", "section", "depends"), default="tags",
                   help="what a package's labels are (default: its debtags)")
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(fn=cmd_debtags)
    c = sub.add_parser("measure")
    c.add_argument("-o", "--output", required=True)
    c.add_argument("cmd", nargs=argparse.REMAINDER)
    c.set_defaults(fn=cmd_measure)
    for name, fn in (("fasttext", cmd_fasttext), ("torch", cmd_torch)):
        c = sub.add_parser(name)
        c.add_argument("--results", required=True, help="peers.json to append to")
        c.add_argument("--test-npz", required=True)
        c.add_argument("--eval-points", type=int, default=2000)
        c.add_argument("--threads", type=int, default=2)
        c.add_argument("--epochs", type=float, default=5)
        c.add_argument("--lr", type=float)
        c.set_defaults(fn=fn)
        c.add_argument("--train-npz", required=True,
                       help="the training points: label counts for PSP@k (and torch's input)")
        if name == "fasttext":
            c.add_argument("--train", required=True, help="fastText training file")
            c.add_argument("--test-features", required=True)
            c.add_argument("--loss", choices=["hs", "ns", "softmax"], default="hs")
            c.add_argument("--dim", type=int, default=128)
            c.add_argument("--neg", type=int, default=50)
            c.add_argument("--fasttext-bin", default="fasttext")
            c.add_argument("--workdir", default=None)
            c.add_argument("--encoding", default="", help="recorded: how the words were made")
        else:
            c.add_argument("--mode", choices=["sampled", "full"], default="sampled")
            c.add_argument("--negatives", type=int, default=0,
                           help="shared negatives per batch (0: 0.5%% of the labels)")
            c.add_argument("--hidden", type=int, default=128)
            c.add_argument("--batch", type=int, default=256)
            c.add_argument("--max-seconds", type=float, default=0)
            c.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("napkinxc", help="napkinXC's nxc (defaults: PLT) on XC text")
    c.add_argument("--results", required=True, help="peers.json to append to")
    c.add_argument("--test-npz", required=True, help="the test points, for scoring")
    c.add_argument("--eval-points", type=int, default=2000)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--train", required=True, help="training points, XC text")
    c.add_argument("--train-npz", required=True, help="the same, for the label counts of PSP@k")
    c.add_argument("--test", required=True,
                   help="the scored test points (the first --eval-points of --test-npz), XC text")
    c.add_argument("--nxc-bin", default="nxc")
    c.add_argument("--nxc-args", default="", help="more nxc train flags (space-separated)")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--workdir", default=None)
    c.set_defaults(fn=cmd_napkinxc)
    a = p.parse_args()
    if a.cmd == "napkinxc":
        a.nxc_args = a.nxc_args.split()
    if getattr(a, "lr", 0) is None:
        a.lr = 0.5 if a.cmd == "fasttext" else 1e-2 if a.cmd == "torch" else None
    a.fn(a)


if __name__ == "__main__":
    main()
