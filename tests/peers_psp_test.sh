#!/usr/bin/env bash
# benchmarks/peers/peers.py scores the peers as glide scores itself: P@1/P@5 and PSP@1/PSP@5 of
# glide predict's top 5, scored by peers.py with the training set's label counts, equal what
# glide eval --train prints for the same model and test points. Skips (77) without numpy.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"
peers=$(cd "$(dirname "$0")/../benchmarks/peers" && pwd)
export PYTHONDONTWRITEBYTECODE=1  # nothing written beside peers.py
py=/usr/bin/python3  # the interpreter run.sh uses
[ -x "$py" ] || py=$(command -v python3)
"$py" -c 'import numpy' 2>/dev/null || { echo "SKIP: $py has no numpy (python3-numpy)"; exit 77; }

# Skewed, multi-label points, so that the labels' weights differ.
"$glide" data synth --preset tiny --points 600 --test-points 200 -o tr.gds --test-output te.gds \
  2>/dev/null
"$glide" train --train tr.gds -o m.glide --epochs 1 --threads 1 -q >/dev/null 2>&1
for d in tr te; do
  "$glide" data convert $d.gds -o $d.xc.txt >/dev/null 2>&1
  "$py" "$peers/peers.py" convert $d.xc.txt --npz $d.npz 2>/dev/null
done
tail -n +2 te.xc.txt | "$glide" predict --model m.glide --threads 1 >pred.txt
"$glide" eval --model m.glide --test te.gds --mode exact --train tr.gds >eval.txt
col() { awk -v name="$1" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i } NR == 2 { print $c }' eval.txt; }
expected="$(col P@1) $(col P@5) $(col PSP@1) $(col PSP@5)"
got=$("$py" - "$peers" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import peers
pred = [[int(x.split(":")[0]) for x in line.split()] for line in open("pred.txt")]
test = peers.load_npz("te.npz")
s = peers.precision_at(pred, test, len(pred), peers.inverse_propensity("tr.npz", test["L"]))
print(" ".join(f"{s[k]:.4f}" for k in ("p1", "p5", "psp1", "psp5")))
PY
)
[ "$got" = "$expected" ] || fail "peers.py scored '$got', glide eval '$expected' (P@1 P@5 PSP@1 PSP@5)"
# PSP@k differs from P@k here: a test that would pass with the weights ignored proves little.
[ "$(col PSP@1)" != "$(col P@1)" ] || fail "PSP@1 equals P@1: $(cat eval.txt)"
