#!/usr/bin/env bash
# Time to accuracy: glide against the tools users would pick instead (fastText, PyTorch,
# napkinXC), on the same data and machine, in one run. See docs/benchmarks.md ("Time to accuracy").
#
#   benchmarks/peers/run.sh --out peers-out            # Amazon-670K shape, 102,400 points
#   benchmarks/peers/run.sh --preset default --out q   # quick
#   benchmarks/peers/run.sh --task text --out text     # word -> context words on a prose corpus
#   benchmarks/peers/run.sh --task debtags --out tags  # real data: Debian packages' tags
#   benchmarks/peers/run.sh --task debdeps --out deps  # ... the packages each depends on
#
# Writes OUT/glide-*.jsonl (one per glide run, from --log-jsonl, plus a "meta" record with the
# run's name and peak RSS), OUT/peers.json, OUT/report.html, OUT/report.svg and OUT/table.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/benchmarks/peers"

usage() {
  cat <<'EOF'
usage: benchmarks/peers/run.sh [flags]

data
  --task xc|text|debtags|debsection|debdeps
                            synthetic extreme classification (default), a text corpus, or
                            real data from the apt lists: Debian packages' tags, section (one
                            label) or dependencies, from their descriptions' words and the rest
  --preset NAME             glide data synth preset: amazon670k (default), default, families,
                            facets, tiny
  --points N                training points (default 102400)
  --test-points N           test points generated (default 10000)
  --synth-args "..."        more glide data synth flags (e.g. "--labels 20000")
  --train FILE --test FILE  use this dataset instead (any format glide reads)
  --corpus FILE|DIR         text task corpus (default: /usr/share/common-licenses, prose)
  --window N                text task context window (default 5)
  --packages "FILE..."      deb* tasks: Packages files (default: the apt lists')
run
  --out DIR                 output directory (default peers-out)
  --glide PATH              glide binary (default build/apps/glide)
  --threads N               threads for every tool (default 2)
  --eval-points N           test points every tool is scored on (default 2000)
  --eval-every N            glide: batches between evaluations (default 200)
  --levels LIST             P@1 levels of the table (default 0.3,0.5,0.6,0.7,0.75; text task
                            0.05,0.1,0.15,0.2)
  --only LIST               run only these (comma-separated): glide-lsh, glide-random,
                            glide-dense, fasttext-hs, fasttext-ns, torch-sampled, torch-full,
                            napkinxc
  --skip LIST               run all but these
glide
  --glide-epochs E          epochs of the lsh and random runs (default 5)
  --glide-max-seconds S     time cap of the lsh and random runs (default 0: none)
  --dense-max-seconds S     time cap of the dense run (default 600)
  --glide-lr X              learning rate of every glide run (default: glide's own)
  --glide-args "..."        more glide train flags for every glide run
fastText
  --ft-hs-epochs LIST       budgets for hierarchical softmax (default 5,10,20)
  --ft-ns-epochs LIST       budgets for negative sampling (default 5)
  --ft-dim N --ft-lr X --ft-neg N    (defaults 128, 0.5, 50)
  --ft-encoding once|repeat how tf-idf values become words (default repeat; see peers.py)
PyTorch
  --torch-epochs E          sampled softmax epochs, evaluated after each (default 3)
  --torch-negatives N       shared negatives per batch (default 0: 0.5% of the labels)
  --torch-lr X              (default 0.01)
  --torch-full-epochs E     full softmax epochs (default 1)
  --torch-full-max-seconds S  its time cap (default 300)
napkinXC (not packaged: build it from source, see docs/benchmarks.md)
  --nxc PATH                its nxc binary (default: nxc on PATH; without one the run is skipped)
  --nxc-args "..."          more nxc train flags (default none: napkinXC's defaults, a PLT)
EOF
}

task=xc preset=amazon670k points=102400 test_points=10000 synth_args="" train_in="" test_in=""
corpus=/usr/share/common-licenses window=5 packages=""
out=peers-out glide="$root/build/apps/glide" threads=2 eval_points=2000 eval_every=200
only="" skip="" levels=""
glide_epochs=5 glide_max_seconds=0 dense_max_seconds=600 glide_args="" glide_lr=""
ft_hs_epochs=5,10,20 ft_ns_epochs=5 ft_dim=128 ft_lr=0.5 ft_neg=50 ft_encoding=repeat
torch_epochs=3 torch_negatives=0 torch_lr=0.01 torch_full_epochs=1 torch_full_max_seconds=300
nxc="" nxc_args=""
while [ $# -gt 0 ]; do
  flag=$1
  case $flag in
    -h|--help) usage; exit 0 ;;
  esac
  [ $# -ge 2 ] || { echo "run.sh: $flag needs a value (see --help)" >&2; exit 2; }
  v=$2
  shift 2
  case $flag in
    --task) task=$v ;; --preset) preset=$v ;; --points) points=$v ;;
    --test-points) test_points=$v ;; --synth-args) synth_args=$v ;;
    --train) train_in=$v ;; --test) test_in=$v ;; --corpus) corpus=$v ;; --window) window=$v ;;
    --packages) packages=$v ;;
    --out) out=$v ;; --glide) glide=$v ;; --threads) threads=$v ;;
    --eval-points) eval_points=$v ;; --eval-every) eval_every=$v ;;
    --levels) levels=$v ;; --only) only=$v ;; --skip) skip=$v ;;
    --glide-epochs) glide_epochs=$v ;; --glide-max-seconds) glide_max_seconds=$v ;;
    --dense-max-seconds) dense_max_seconds=$v ;; --glide-args) glide_args=$v ;;
    --glide-lr) glide_lr=$v ;;
    --ft-hs-epochs) ft_hs_epochs=$v ;; --ft-ns-epochs) ft_ns_epochs=$v ;; --ft-dim) ft_dim=$v ;;
    --ft-lr) ft_lr=$v ;; --ft-neg) ft_neg=$v ;; --ft-encoding) ft_encoding=$v ;;
    --torch-epochs) torch_epochs=$v ;; --torch-negatives) torch_negatives=$v ;;
    --torch-lr) torch_lr=$v ;; --torch-full-epochs) torch_full_epochs=$v ;;
    --torch-full-max-seconds) torch_full_max_seconds=$v ;;
    --nxc) nxc=$v ;; --nxc-args) nxc_args=$v ;;
    *) echo "run.sh: unknown flag $flag (see --help)" >&2; exit 2 ;;
  esac
done
case $task in
  xc|text|debtags|debsection|debdeps) ;;
  *) echo "run.sh: --task is xc, text, debtags, debsection or debdeps" >&2; exit 2 ;;
esac
if { [ -n "$train_in" ] && [ -z "$test_in" ]; } || { [ -z "$train_in" ] && [ -n "$test_in" ]; }; then
  echo "run.sh: --train and --test go together" >&2; exit 2
fi
[ -x "$glide" ] || { echo "run.sh: no glide binary at $glide (scripts/build build, or --glide)" >&2; exit 2; }
if [ -n "$nxc" ] && ! [ -x "$nxc" ]; then
  echo "run.sh: no napkinXC binary at $nxc (--nxc)" >&2; exit 2
fi

wanted() {  # wanted NAME: is this run selected by --only / --skip?
  if [ -n "$only" ] && [[ ",$only," != *",$1,"* ]]; then return 1; fi
  if [ -n "$skip" ] && [[ ",$skip," == *",$1,"* ]]; then return 1; fi
  return 0
}
say() { echo "== $*" >&2; }

# Debian's python with Debian's packages (not a pyenv or venv python that lacks them).
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
apt_install() {  # apt_install PKG...: installs what is missing; fails quietly
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null 2>&1; }
}
have_numpy=1 have_torch=1 have_fasttext=1 have_nxc=1
apt_install python3-numpy || true
"$py" -c "import numpy" 2>/dev/null || { have_numpy=0; echo "run.sh: SKIPPING every peer: numpy is missing and python3-numpy did not install" >&2; }
if wanted torch-sampled || wanted torch-full; then
  apt_install python3-torch libopenblas0-pthread || true
  "$py" -c "import torch" 2>/dev/null ||
    { have_torch=0; echo "run.sh: SKIPPING PyTorch: python3-torch did not install" >&2; }
fi
if wanted fasttext-hs || wanted fasttext-ns; then
  apt_install fasttext || true
  command -v fasttext >/dev/null ||
    { have_fasttext=0; echo "run.sh: SKIPPING fastText: the fasttext package did not install" >&2; }
fi
if wanted napkinxc; then
  [ -n "$nxc" ] || nxc=$(command -v nxc || true)
  [ -n "$nxc" ] || { have_nxc=0
    echo "run.sh: SKIPPING napkinXC: no nxc on PATH (build it from source; --nxc PATH)" >&2; }
fi
apt_install gnuplot-nox || echo "run.sh: gnuplot-nox did not install: no chart at the end" >&2
# Debian's torch links the reference BLAS unless told otherwise: use OpenBLAS (pthread build).
openblas=""
for d in /usr/lib/x86_64-linux-gnu/openblas-pthread /usr/lib/x86_64-linux-gnu/openblas-openmp \
         /usr/lib/x86_64-linux-gnu/openblas-serial; do
  [ -e "$d/libblas.so.3" ] && { openblas=$d; break; }
done
[ -n "$openblas" ] || echo "run.sh: warning: no OpenBLAS found: PyTorch runs on the reference BLAS" >&2
torch_env=(env OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
  ${openblas:+LD_LIBRARY_PATH="$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"})

mkdir -p "$out/data" "$out/models"
out=$(cd "$out" && pwd)
data="$out/data"
results="$out/peers.json"
rm -f "$results" "$out"/glide-*.jsonl

# ---------------------------------------------------------------- 1. the dataset
if [ -n "$train_in" ]; then
  say "dataset: $train_in / $test_in"
  train=$train_in test=$test_in
elif [ "$task" = xc ]; then
  train="$data/train.gds" test="$data/test.gds"
  say "dataset: glide data synth --preset $preset --points $points --test-points $test_points $synth_args"
  # shellcheck disable=SC2086
  "$glide" data synth --preset "$preset" --points "$points" --test-points "$test_points" \
    --threads "$threads" $synth_args -o "$train" --test-output "$test"
elif [[ $task == deb* ]]; then
  case $task in debtags) labels=tags ;; debsection) labels=section ;; *) labels=depends ;; esac
  say "dataset: Debian packages' $labels${packages:+ from $packages}"
  # shellcheck disable=SC2086
  "$py" "$here/peers.py" debtags --labels "$labels" ${packages:+--packages $packages} \
    -o "$data/tags.txt"
  "$py" "$here/peers.py" split "$data/tags.txt" --train "$data/train.txt" --test "$data/test.txt" \
    --test-points "$test_points"
  train="$data/train.txt" test="$data/test.txt"
else
  say "dataset: text corpus $corpus, window $window"
  "$py" "$here/peers.py" corpus "$corpus" -o "$data/corpus.txt"
  "$glide" data text2xc "$data/corpus.txt" --window "$window" --min-count 5 --subsample 1e-3 \
    --threads "$threads" -o "$data/words.txt"
  "$py" "$here/peers.py" split "$data/words.txt" --train "$data/train.txt" --test "$data/test.txt" \
    --test-points "$test_points"
  train="$data/train.txt" test="$data/test.txt"
fi
"$glide" data stats "$train" | sed -n '1,6p' >&2
glide_test=$test

# ---------------------------------------------------------------- 2. peer formats
if [ "$have_numpy" = 1 ]; then
  say "converting for the peers (fastText words: --ft-encoding $ft_encoding)"
  "$glide" data convert "$train" -o "$data/train.xc.txt" --threads "$threads" 2>/dev/null
  "$glide" data convert "$test" -o "$data/test.xc.txt" --threads "$threads" 2>/dev/null
  "$py" "$here/peers.py" convert "$data/train.xc.txt" --npz "$data/train.npz" \
    --fasttext "$data/train.ft" --ft-encoding "$ft_encoding"
  "$py" "$here/peers.py" convert "$data/test.xc.txt" --npz "$data/test.npz" \
    --fasttext-features "$data/test.ft" --ft-encoding "$ft_encoding"
  # napkinXC reads XC text: keep the training points' for it.
  { wanted napkinxc && [ "$have_nxc" = 1 ]; } || rm -f "$data/train.xc.txt"
  rm -f "$data/test.xc.txt"
  # glide scores the same first --eval-points test points as the peers, during training and in
  # its final evaluation (which would otherwise score every test point: minutes at 670k labels).
  "$py" "$here/peers.py" head "$data/test.npz" --points "$eval_points" -o "$data/test.eval.txt"
  glide_test="$data/test.eval.txt"
fi

# ---------------------------------------------------------------- 3. peers
common=(--results "$results" --train-npz "$data/train.npz" --test-npz "$data/test.npz"
  --eval-points "$eval_points" --threads "$threads")
if [ "$have_numpy" = 1 ] && [ "$have_fasttext" = 1 ]; then
  for loss in hs ns; do
    wanted "fasttext-$loss" || continue
    [ "$loss" = hs ] && budgets=$ft_hs_epochs || budgets=$ft_ns_epochs
    for e in ${budgets//,/ }; do
      say "fastText $loss, $e epochs"
      "$py" "$here/peers.py" fasttext "${common[@]}" --train "$data/train.ft" \
        --test-features "$data/test.ft" --loss "$loss" --epochs "$e" --dim "$ft_dim" \
        --lr "$ft_lr" --neg "$ft_neg" --workdir "$out/models" --encoding "$ft_encoding" ||
        echo "run.sh: fastText $loss $e epochs failed" >&2
    done
  done
fi
if [ "$have_numpy" = 1 ] && [ "$have_torch" = 1 ]; then
  if wanted torch-sampled; then
    say "PyTorch sampled softmax, $torch_epochs epochs"
    "${torch_env[@]}" "$py" "$here/peers.py" torch "${common[@]}" --mode sampled --epochs "$torch_epochs" \
      --negatives "$torch_negatives" --lr "$torch_lr" ||
      echo "run.sh: PyTorch sampled softmax failed" >&2
  fi
  if wanted torch-full; then
    say "PyTorch full softmax, $torch_full_epochs epochs, at most $torch_full_max_seconds s"
    "${torch_env[@]}" "$py" "$here/peers.py" torch "${common[@]}" --mode full --epochs "$torch_full_epochs" \
      --max-seconds "$torch_full_max_seconds" --lr "$torch_lr" || echo "run.sh: PyTorch full softmax failed" >&2
  fi
fi
if [ "$have_numpy" = 1 ] && [ "$have_nxc" = 1 ] && wanted napkinxc; then
  say "napkinXC ($nxc), its defaults${nxc_args:+ and $nxc_args}"
  "$py" "$here/peers.py" napkinxc "${common[@]}" --train "$data/train.xc.txt" \
    --test "$data/test.eval.txt" --nxc-bin "$nxc" --nxc-args="$nxc_args" --workdir "$out/models" ||
    echo "run.sh: napkinXC failed" >&2
  rm -f "$data/train.xc.txt"
fi

# ---------------------------------------------------------------- 4. glide
run_glide() {  # run_glide NAME LABEL FLAGS...
  local name=$1 label=$2${glide_lr:+ lr$glide_lr}
  shift 2
  wanted "glide-$name" || return 0
  local log="$out/glide-$name.jsonl" model="$out/models/glide-$name.glide"
  say "glide $label: glide train $*"
  rm -f "$log"
  # shellcheck disable=SC2086
  "$py" "$here/peers.py" measure -o "$out/models/measure.json" -- \
    "$glide" train --train "$train" --test "$glide_test" -o "$model" --log-jsonl "$log" \
    --threads "$threads" --eval-every "$eval_every" --eval-points "$eval_points" -q \
    ${glide_lr:+--lr "$glide_lr"} "$@" $glide_args >"$out/glide-$name.out" 2>&1 ||
    { echo "run.sh: glide $label failed:" >&2; tail -3 "$out/glide-$name.out" >&2; return 0; }
  "$py" - "$out/models/measure.json" "$log" "glide $label" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
with open(sys.argv[2], "a") as f:
    f.write(json.dumps({"type": "meta", "name": sys.argv[3], "peak_rss_mb": m["peak_rss_mb"],
                        "wall_seconds": m["wall_seconds"]}) + "\n")
EOF
  grep -h "^trained\|^test" "$out/glide-$name.out" >&2 || true
  rm -f "$model"
}
run_glide lsh "lsh" --epochs "$glide_epochs" --max-seconds "$glide_max_seconds"
run_glide random "random" --sampling random --epochs "$glide_epochs" \
  --max-seconds "$glide_max_seconds"
run_glide dense "dense" --sampling dense --epochs "$glide_epochs" --max-seconds "$dense_max_seconds"

# ---------------------------------------------------------------- 5. report
rm -rf "$out/models"
runs=("$out"/glide-*.jsonl)
[ -e "${runs[0]}" ] || runs=()
peers_flag=()
[ -s "$results" ] && peers_flag=(--peers "$results")
if [ ${#runs[@]} -eq 0 ] && [ ${#peers_flag[@]} -eq 0 ]; then
  echo "run.sh: nothing ran" >&2; exit 1
fi
if [ -z "$levels" ]; then
  case $task in
    text) levels=0.05,0.1,0.15,0.2 ;; debtags) levels=0.5,0.8,0.85,0.9,0.95 ;;
    debsection) levels=0.5,0.6,0.7,0.8 ;; debdeps) levels=0.3,0.5,0.6,0.7 ;;
    *) levels=0.3,0.5,0.6,0.7,0.75 ;;
  esac
fi
case $task in text) name="text task" ;; deb*) name=$task ;; *) name=$preset ;; esac
title="Time to accuracy: $name, $threads threads"
"$glide" report "${runs[@]}" "${peers_flag[@]}" --title "$title" --levels "$levels" -o "$out/report.html" \
  --table "$out/table.md" && "$glide" report "${runs[@]}" "${peers_flag[@]}" --title "$title" \
  --levels "$levels" -o "$out/report.svg" >/dev/null
say "done: $out/report.html, $out/report.svg, $out/table.md, $out/peers.json, $out/glide-*.jsonl"
