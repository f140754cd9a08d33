#!/usr/bin/env bash
# `glide eval` output: the table's header comes with its first row, so an error before any row is
# computed is the only output (one line on stderr, nothing on stdout).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 300 --test-points 50 -o tr.gds --test-output te.gds \
  2>/dev/null
"$glide" train --train tr.gds -o m.glide --epochs 0.2 --threads 1 -q >/dev/null 2>&1
features=$("$glide" data stats tr.gds | sed -n 's/^features *\([0-9]*\).*/\1/p')
[ -n "$features" ] || fail "no feature count in data stats"

# A test set wider than the model fails when evaluated: no header before the error.
printf '1 %d 5\n0 %d:1\n' $((features + 10)) $((features + 9)) >wide.txt
if "$glide" eval --model m.glide --test wide.txt >out.txt 2>err.txt; then fail "eval of wide.txt"; fi
[ ! -s out.txt ] || { cat out.txt >&2; fail "eval printed before its error"; }
[ "$(wc -l <err.txt)" -eq 1 ] && grep -q "features" err.txt || { cat err.txt >&2; fail "error"; }

# A good run: the header, then one row per mode.
"$glide" eval --model m.glide --test te.gds --mode both >out.txt
[ "$(sed -n 1p out.txt | awk '{print $1, $2}')" = "mode P@1" ] || fail "header: $(cat out.txt)"
[ "$(awk 'NR > 1 {print $1}' out.txt | tr '\n' ' ')" = "exact sampled " ] || fail "rows: $(cat out.txt)"
echo "eval CLI tests passed"
