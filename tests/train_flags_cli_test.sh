#!/usr/bin/env bash
# `glide train`'s flags as a user meets them: --help shows every value flag's default (the config
# table's flags included); a run says what it trains in one short line (the whole config only
# with --verbose); the cache switch is spelled --cache in train and serve, with --caches accepted
# as the same flag in both.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

# --help: each option entry (continuation lines joined) that takes a value states its default,
# except the files and the alias.
"$glide" train --help >help.txt
awk '/^  *-/ { if (entry != "") print entry; entry = $0; next }
     /^   / { if (entry != "") { sub(/^ */, " "); entry = entry $0 }; next }
     { if (entry != "") print entry; entry = "" }
     END { if (entry != "") print entry }' help.txt >entries.txt
[ "$(grep -c ' arg ' entries.txt)" -gt 30 ] || fail "too few value flags in --help"
grep ' arg ' entries.txt |
  grep -Ev -- '--(train|test|valid|output|resume|log-jsonl|config|caches) arg' |
  grep -v 'default: ' >nodefault.txt || true
[ ! -s nodefault.txt ] || { cat nodefault.txt >&2; fail "flags without a default in --help"; }
grep -q -- '--lr arg .*(0: 3e-4 beside .*(default: 0)' entries.txt ||
  fail "--lr default"
grep -q -- '--wide arg .*auto: a *new model .*(default: auto)' entries.txt ||
  fail "--wide default"
grep -q -- '--hidden arg .*(default: 128)' entries.txt || fail "--hidden default"
grep -q -- '--sampling arg .*(default: lsh)' entries.txt || fail "--sampling default"
grep -q -- '--epochs arg .*(default: 5)' entries.txt || fail "--epochs default"
grep -q -- '--output-lr arg .*0: 0.002 beside .*(default: 0)' \
  entries.txt || fail "--output-lr default"

"$glide" data synth --preset tiny --points 300 -o tr.gds 2>/dev/null
features=$("$glide" data stats tr.gds | sed -n 's/^features *\([0-9]*\).*/\1/p')

# One short line on what trains; the JSON config only with --verbose.
"$glide" train --train tr.gds -o m.glide --epochs 0.2 --threads 1 >out.txt 2>err.txt
grep -q "^training $features features -> 128 -> [0-9]* labels, lsh sampling, wide layer, 0.2 epoch(s), lr 0.0003$" \
  err.txt || { cat err.txt >&2; fail "no short training line"; }
grep -q '{' err.txt && { cat err.txt >&2; fail "config JSON without --verbose"; }
# --wide auto (the default) says what it chose and why; on 300 points there is nothing to hold out.
grep -q "^wide layer kept: too few training points" err.txt ||
  { cat err.txt >&2; fail "no word on the wide layer's check on 300 points"; }
# Without the wide layer the line gives the network's own default lr.
"$glide" train --train tr.gds -o m.glide --epochs 0.2 --threads 1 --wide off >out.txt 2>err.txt
grep -q "^training $features features -> 128 -> [0-9]* labels, lsh sampling, 0.2 epoch(s), lr 0.01$" \
  err.txt || { cat err.txt >&2; fail "no short training line without the wide layer"; }
# The rare labels' path: the network alone's lr, and the labels it covers; the model keeps both.
"$glide" train --train tr.gds -o tail.glide --epochs 0.2 --threads 1 --wide tail \
  --wide-tail-points 3 >out.txt 2>err.txt
grep -q "^training $features features -> 128 -> [0-9]* labels, lsh sampling, wide tail (labels of at most 3 training points), 0.2 epoch(s), lr 0.01$" \
  err.txt || { cat err.txt >&2; fail "no short training line for the rare labels' path"; }
"$glide" train --train tr.gds --resume tail.glide -o x.glide --print-config >config.txt
grep -Eq '"wide": *"tail"' config.txt && grep -Eq '"wide_tail_points": *3' config.txt ||
  { cat config.txt >&2; fail "the model's config lost the rare labels' path"; }
# With enough points it checks, and the model records the choice.
"$glide" data synth --preset tiny --points 1500 -o tr1500.gds 2>/dev/null
"$glide" train --train tr1500.gds -o auto.glide --epochs 1 --threads 1 >out.txt 2>err.txt
grep -Eq "^wide layer (kept|dropped)[^:]*: the network alone, after [0-9.]+ epoch\(s\), P@1 [0-9.]+ / P@5 [0-9.]+ on [0-9]+ held-out training points; the wide start P@1 [0-9.]+ / P@5 [0-9.]+ on 150 " \
  err.txt || { cat err.txt >&2; fail "no line on the wide layer's check"; }
# Its stages as they end: the start's candidates, each look at the network alone, the build.
grep -Eq "^  wide start: 0 share round\(s\) scored on 150 held-out points, best P@1 [0-9.]+, [0-9.]+ s$" \
  err.txt || { cat err.txt >&2; fail "no line on the wide start's candidates"; }
grep -Eq "^  network alone after [0-9.]+ epoch\(s\) \([0-9.]+ s\): P@1 [0-9.]+ / P@5 [0-9.]+ on [0-9]+ held-out points$" \
  err.txt || { cat err.txt >&2; fail "no line on a look at the network alone"; }
grep -Eq "^  (the wide layer|the rare labels' path) built on every training point: [0-9]+ entries, [0-9.]+ s$" \
  err.txt || { cat err.txt >&2; fail "no line on the wide layer's build"; }
"$glide" train --train tr1500.gds -o auto.glide --epochs 1 --threads 1 -q >out.txt 2>err.txt
[ ! -s err.txt ] || { cat err.txt >&2; fail "-q printed the setup's stages"; }
"$glide" train --train tr1500.gds --resume auto.glide -o x.glide --print-config >config.txt
grep -Eq '"wide": *"(on|tail)"' config.txt || { cat config.txt >&2; fail "the model's wide not on/tail"; }
"$glide" train --train tr.gds -o m.glide --epochs 0.2 --threads 1 --verbose >out.txt 2>err.txt
grep -q '^config: {' err.txt || { cat err.txt >&2; fail "--verbose did not print the config"; }

# The cache switch: both spellings, in train and in serve.
for flag in --cache --caches; do
  "$glide" train --train tr.gds -o c.glide --epochs 0.2 --threads 1 -q "$flag" on \
    --cache-budget 1 >out.txt 2>err.txt || { cat err.txt >&2; fail "train $flag on"; }
  grep -q '^caches: ' out.txt || { cat out.txt >&2; fail "train $flag on trained no caches"; }
  "$glide" train --train tr.gds -o c.glide --epochs 0.2 --threads 1 -q "$flag" off >out.txt
  grep -q '^caches: ' out.txt && fail "train $flag off trained caches"
  expect_error "$flag: must be on or off, got 'maybe'" \
    "$glide" serve --model m=m.glide --port 0 "$flag" maybe
done
expect_error "disagree" "$glide" train --train tr.gds -o c.glide -q --cache on --caches off
# Into a file: serve's help is longer than stdio's 4 KiB buffer, so it goes out in two writes, and
# grep -q could close the pipe between them (SIGPIPE: a failed pipeline under pipefail).
"$glide" serve --help >serve_help.txt
grep -q -- '--cache arg' serve_help.txt || fail "serve --help lacks --cache"
echo "train flag CLI tests passed"
