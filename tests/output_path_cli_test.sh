#!/usr/bin/env bash
# A job whose output cannot be written fails before it starts, naming the path and the flag (it
# trained to the end and then lost the model); `glide quantize` refuses to overwrite its input.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 1000 --seed 3 -o train.gds 2>/dev/null
mkdir dir
expect_refused() {  # OUTPUT WHAT-THE-ERROR-SAYS
  if "$glide" train --train train.gds -o "$1" --epochs 1 -q >out.txt 2>err.txt; then
    fail "train -o $1 succeeded"
  fi
  grep -q "trained" out.txt && fail "train -o $1 trained before failing"
  grep -q -- "$1 (-o)" err.txt || fail "train -o $1: the error does not name it: $(cat err.txt)"
  grep -q -- "$2" err.txt || fail "train -o $1: expected '$2' in: $(cat err.txt)"
}
expect_refused missing/m.glide "No such file or directory"
expect_refused dir "is a directory"
if [ "$(id -u)" -ne 0 ]; then  # root writes anywhere
  mkdir ro && chmod a-w ro
  expect_refused ro/m.glide "Permission denied"
fi
ls dir missing 2>/dev/null | grep -q tmp && fail "a probe file was left behind"

"$glide" train --train train.gds -o m.glide --epochs 1 -q >/dev/null 2>&1 || fail "train"
before=$(md5sum m.glide)
if "$glide" quantize --model m.glide -o ./m.glide >/dev/null 2>err.txt; then
  fail "quantize onto its input succeeded"
fi
grep -q "is the input model" err.txt || fail "quantize in place: $(cat err.txt)"
[ "$(md5sum m.glide)" = "$before" ] || fail "quantize in place changed the model"
"$glide" quantize --model m.glide -o q.glide >/dev/null 2>&1 || fail "quantize to another file"
echo "output path checks passed"
