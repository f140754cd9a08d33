#!/usr/bin/env bash
# `glide quantize` of a model trained with learned caches keeps the caches (read back from the
# written file), or drops them with --caches drop.
set -euo pipefail
glide=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$glide" data synth --preset tiny --points 2000 --seed 3 -o train.gds 2>/dev/null
"$glide" train --train train.gds -o m.glide --epochs 1 --caches on --cache-budget 1 -q \
  >/dev/null 2>&1 || fail "train --caches on"
for to in int8 bf16; do
  "$glide" quantize --model m.glide -o q.glide --to "$to" >out.txt 2>&1 || {
    cat out.txt >&2
    fail "quantize --to $to"
  }
  grep -q "learned caches kept on hidden layers 0 (thresholds reset)" out.txt ||
    { cat out.txt >&2; fail "quantize --to $to dropped the caches"; }
done
"$glide" quantize --model m.glide -o d.glide --caches drop >out.txt 2>&1 || fail "--caches drop"
if grep -q "learned caches" out.txt; then fail "--caches drop kept the caches"; fi
if "$glide" quantize --model m.glide -o x.glide --caches maybe >/dev/null 2>err.txt; then
  fail "--caches maybe succeeded"
fi
grep -q "keep or drop" err.txt || fail "--caches maybe: $(cat err.txt)"
echo ok
