#!/usr/bin/env bash
# `glide quantize` of a model trained with learned caches keeps the caches (read back from the
# written file), or drops them with --caches drop.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

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

# The cache flags train and serve share: a cosine cache trains and quantizes; bad values are named.
"$glide" train --train train.gds -o c.glide --epochs 1 --caches on --cache-confidence cosine \
  --cache-sketch 0 --cache-budget 1 -q >/dev/null 2>&1 || fail "train --cache-confidence cosine"
"$glide" quantize --model c.glide -o cq.glide --to int8 >out.txt 2>&1 || fail "quantize c.glide"
grep -q "learned caches kept" out.txt || { cat out.txt >&2; fail "cosine caches were not kept"; }
for flag in "--cache-confidence nope" "--cache-form tree" "--cache-target 1.5" "--caches maybe"; do
  # shellcheck disable=SC2086 # each entry is a flag and its value
  if "$glide" train --train train.gds -o x.glide --epochs 1 --caches on $flag -q \
    >/dev/null 2>err.txt; then
    fail "train $flag succeeded"
  fi
  grep -q -- "${flag%% *}" err.txt || fail "train $flag: the error does not name the flag: $(cat err.txt)"
done
echo ok
