#!/usr/bin/env bash
# `glide data` end to end on a tiny dataset: synth, convert both ways, stats, text2xc, and that bad
# flags and malformed files fail with exit code != 0 and one error line naming file:line.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

# Expects failure with exactly one line on stderr that contains $1.
"$glide" data --help | grep -q synth || fail "data --help"
"$glide" data synth --help | grep -q -- --test-points || fail "synth --help"
"$glide" data synth --preset tiny --points 300 --seed 3 -o train.gds \
  --test-points 50 --test-output test.txt 2>/dev/null
"$glide" data stats train.gds | grep -q "points              300" || fail "stats of train.gds"
"$glide" data stats test.txt | grep -q "points              50" || fail "stats of test.txt"
"$glide" data convert train.gds -o train.txt 2>/dev/null
"$glide" data convert train.txt -o again.gds 2>/dev/null
"$glide" data convert again.gds -o again.txt.zst 2>/dev/null
"$glide" data convert again.txt.zst -o again.txt 2>/dev/null
cmp -s train.txt again.txt || fail "text -> .gds -> .zst -> text changed the data"
# The XC repository's split files (trn_X_Xf.txt + trn_X_Y.txt) make the same XC text.
awk 'NR == 1 { print $1, $2; next } { sub(/^[^ ]*/, ""); sub(/^ /, ""); print }' train.txt >xf.txt
awk 'NR == 1 { print $1, $3; next }
     { n = split(($1 ~ /:/ ? "" : $1), l, ","); s = ""
       for (i = 1; i <= n; ++i) s = s (i > 1 ? " " : "") l[i] ":1"; print s }' train.txt >y.txt
"$glide" data convert xf.txt --labels y.txt -o split.txt 2>/dev/null || fail "convert --labels"
cmp -s train.txt split.txt || fail "split files -> text differs from the XC text they came from"
"$glide" data synth --kind rec --users 50 --items 300 --clusters 10 -o rec.txt 2>/dev/null
"$glide" data stats rec.txt | grep -q "labels              300" || fail "rec stats"
printf 'the cat sat on the mat\nthe dog sat\n' >corpus.txt
"$glide" data text2xc corpus.txt --window 2 --min-count 1 --subsample 0 -o words.txt 2>/dev/null
[ "$(head -1 words.txt.vocab)" = "the 3" ] || fail "text2xc vocabulary"

expect_error "Option ‘bogus’ does not exist" "$glide" data synth --bogus -o x.gds
expect_error "unexpected argument 'extra'" "$glide" data stats train.gds extra
expect_error "unknown subcommand 'frobnicate'" "$glide" data frobnicate
printf '2 10 5\n0 1:0.5\n1 2:x\n' >bad.txt
expect_error "bad.txt:3:5: expected a finite feature value, got 'x'" "$glide" data stats bad.txt
expect_error "bad.txt:3:5:" "$glide" data convert bad.txt -o bad.gds
[ ! -e bad.gds ] || fail "a failed convert left an output file"
"$glide" data stats --skip-bad-lines bad.txt 2>err.txt | grep -q "1 bad lines skipped" || fail "skip"
grep -q "skipped 1 malformed line" err.txt || fail "skip warning"
# A label a point repeats counts once (in stats, training and metrics), with one warning line per
# file, also when converting (the .gds keeps each label once).
printf '2 10 5\n1,1,2 1:0.5\n3,3,3 2:1\n' >dup.txt
"$glide" data stats dup.txt 2>err.txt | grep -q "labels per point    mean 1.50, max 2" ||
  fail "repeated labels counted in stats"
[ "$(wc -l <err.txt)" -eq 1 ] && grep -q "dup.txt: warning: dropped 3 repeated label id(s).*dup.txt:2" err.txt ||
  { cat err.txt >&2; fail "repeated-label warning"; }
printf '1,1 1:0.5\n2 3:1\n' >dup.svm
"$glide" data convert dup.svm -o dup.gds 2>err.txt
grep -q "dup.svm: warning: dropped 1 repeated label id(s)" err.txt || fail "libsvm repeated labels"
"$glide" data stats dup.gds 2>err.txt | grep -q "labels per point    mean 1.00" || fail "dup.gds"
[ ! -s err.txt ] || { cat err.txt >&2; fail "the converted .gds still repeats a label"; }
head -c 100 train.gds >cut.gds
expect_error "cut.gds: truncated .gds file" "$glide" data stats cut.gds
echo "data CLI tests passed"
