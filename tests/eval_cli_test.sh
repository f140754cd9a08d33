#!/usr/bin/env bash
# `glide eval` output: the table's header comes with its first row, so an error before any row is
# computed is the only output (one line on stderr, nothing on stdout).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 300 --test-points 50 -o tr.gds --test-output te.gds \
  2>/dev/null
"$glide" train --train tr.gds --test te.gds -o m.glide --epochs 0.2 --threads 1 -q >train.txt 2>&1
features=$("$glide" data stats tr.gds | sed -n 's/^features *\([0-9]*\).*/\1/p')
[ -n "$features" ] || fail "no feature count in data stats"

# A test set wider than the model fails when evaluated: no header before the error.
printf '1 %d 5\n0 %d:1\n' $((features + 10)) $((features + 9)) >wide.txt
if "$glide" eval --model m.glide --test wide.txt >out.txt 2>err.txt; then fail "eval of wide.txt"; fi
[ ! -s out.txt ] || { cat out.txt >&2; fail "eval printed before its error"; }
[ "$(wc -l <err.txt)" -eq 1 ] && grep -q "features" err.txt || { cat err.txt >&2; fail "error"; }

# A test set with more labels than the model: evaluated, with one warning that names both counts.
labels=$("$glide" data stats tr.gds | sed -n 's/^labels *\([0-9]*\).*/\1/p')
printf '1 %d %d\n%d 0:1\n' "$features" $((labels + 3)) $((labels + 2)) >many.txt
"$glide" eval --model m.glide --test many.txt --mode exact >out.txt 2>err.txt ||
  fail "eval of many.txt: $(cat err.txt)"
grep -qF "many.txt has $((labels + 3)) labels, the model $labels" err.txt ||
  fail "no warning for many.txt: $(cat err.txt)"
"$glide" eval --model m.glide --test te.gds --mode exact >/dev/null 2>err.txt
[ ! -s err.txt ] || fail "a warning for te.gds: $(cat err.txt)"

# A good run: the header, then one row per mode.
"$glide" eval --model m.glide --test te.gds --mode both >out.txt
[ "$(sed -n 1p out.txt | awk '{print $1, $2}')" = "mode P@1" ] || fail "header: $(cat out.txt)"
[ "$(awk 'NR > 1 {print $1}' out.txt | tr '\n' ' ')" = "exact sampled " ] || fail "rows: $(cat out.txt)"
# With the training set: PSP@1/3/5 beside P@k, whose columns keep their values; the same PSP@1
# as training's final evaluation of the same model and test set.
"$glide" eval --model m.glide --test te.gds --mode exact --train tr.gds >psp.txt
col() { awk -v name="$1" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i } NR == 2 { print $c }' "$2"; }
[ "$(sed -n 1p psp.txt | awk '{print $8, $9, $10}')" = "PSP@1 PSP@3 PSP@5" ] || fail "header: $(cat psp.txt)"
[ "$(col P@1 psp.txt)" = "$(col P@1 out.txt)" ] || fail "P@1 changed with --train: $(cat psp.txt out.txt)"
for k in 1 3 5; do
  awk -v v="$(col "PSP@$k" psp.txt)" 'BEGIN { exit !(v > 0 && v <= 1) }' || fail "PSP@$k: $(cat psp.txt)"
done
trained=$(sed -n 's/^test (exact): .*PSP@1 \([0-9.]*\).*/\1/p' train.txt)
[ "$trained" = "$(col PSP@1 psp.txt)" ] || fail "train's PSP@1 '$trained': $(cat train.txt psp.txt)"
# Without --train: the label counts glide train saved in the model give the same PSP@k, and
# quantizing or indexing the model keeps them.
"$glide" eval --model m.glide --test te.gds --mode exact >saved.txt
for k in 1 3 5; do
  [ "$(col "PSP@$k" saved.txt)" = "$(col "PSP@$k" psp.txt)" ] ||
    fail "PSP@$k from the saved counts: $(cat saved.txt psp.txt)"
done
"$glide" eval --model m.glide --test te.gds --mode exact --psp-a 0.6 >a_saved.txt
"$glide" eval --model m.glide --test te.gds --mode exact --psp-a 0.6 --train tr.gds >a_train.txt
[ "$(col PSP@1 a_saved.txt)" = "$(col PSP@1 a_train.txt)" ] &&
  [ "$(col PSP@1 a_saved.txt)" != "$(col PSP@1 psp.txt)" ] || fail "--psp-a with the saved counts"
"$glide" quantize --model m.glide -o q.glide >/dev/null 2>&1 || fail "quantize"
"$glide" eval --model q.glide --test te.gds --mode exact >q.txt
[ "$(sed -n 1p q.txt | awk '{print $8}')" = "PSP@1" ] || fail "the quantized model lost its counts: $(cat q.txt)"
expect_error "--psp-b must be positive" "$glide" eval --model m.glide --test te.gds --train tr.gds \
  --psp-b 0
echo "eval CLI tests passed"
