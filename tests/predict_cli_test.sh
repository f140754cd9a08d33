#!/usr/bin/env bash
# `glide predict`: one output line per input line, always (a blank or comment line gets an empty
# line), input from files given as arguments ('-' is stdin) as well as stdin, and errors that
# name the file and line. An XC file's header line is skipped and gets no output line; .gds and
# zstd-compressed files are read as well.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 300 --test-points 20 -o tr.gds --test-output te.txt \
  2>/dev/null
"$glide" train --train tr.gds -o m.glide --epochs 0.2 --threads 1 -q >/dev/null 2>&1

# Inputs: the test file's points without their header line. Every run predicts one input at a
# time (--batch 1): the last digit of a score may depend on the batch's size.
tail -n +2 te.txt >in.txt
n=$(wc -l <in.txt)
"$glide" predict --model m.glide --threads 1 --batch 1 <in.txt >plain.txt
[ "$(wc -l <plain.txt)" -eq "$n" ] || fail "plain: $(wc -l <plain.txt) lines for $n inputs"
grep -qv '^[0-9]*:[-0-9.e]*\( [0-9]*:[-0-9.e]*\)*$' plain.txt && fail "plain: bad line"

# Blank, whitespace-only and comment lines in between: an
# empty line each, the others' answers unchanged and in place (with --batch 3 too, whose batch
# boundaries fall among them).
awk 'NR == 2 { print "" } NR == 4 { print "  \t" } NR == 5 { print "# a comment 3:1" }
     { print } END { print "" }' in.txt >gappy.txt
"$glide" predict --model m.glide --threads 1 --batch 1 <gappy.txt >gappy.out
"$glide" predict --model m.glide --threads 1 --batch 3 <gappy.txt >gappy3.out
[ "$(wc -l <gappy3.out)" -eq "$(wc -l <gappy.txt)" ] || fail "gappy, batch 3: line count"
awk 'NR == 2 || NR == 5 || NR == 7' gappy3.out | grep -q . &&
  fail "gappy, batch 3: a gap line is not empty"
[ "$(wc -l <gappy.out)" -eq "$(wc -l <gappy.txt)" ] || fail "gappy: line count"
awk 'NR == 2 || NR == 5 || NR == 7' gappy.out | grep -q . && fail "gappy: a gap line is not empty"
[ "$(tail -n 1 gappy.out)" = "" ] || fail "gappy: trailing blank line not answered empty"
grep -v '^$' gappy.out | diff - plain.txt >/dev/null || fail "gappy: answers differ"
printf '3:1\n\n' | "$glide" predict --model m.glide --threads 1 >two.txt
[ "$(wc -l <two.txt)" -eq 2 ] && [ -n "$(sed -n 1p two.txt)" ] && [ -z "$(sed -n 2p two.txt)" ] ||
  fail "3:1 then a blank line: $(cat two.txt)"

# Files as arguments, several, with '-' for stdin between them.
head -n 3 in.txt >a.txt
tail -n +4 in.txt >b.txt
head -n 2 in.txt | "$glide" predict --model m.glide --threads 1 --batch 1 a.txt - b.txt >files.out
{ head -n 3 plain.txt; head -n 2 plain.txt; tail -n +4 plain.txt; } | diff - files.out >/dev/null ||
  fail "files a.txt - b.txt: answers differ"

# An XC file as it is: its header line is skipped and gets no line, so line N answers point N.
"$glide" predict --model m.glide --threads 1 --batch 1 te.txt | diff - plain.txt >/dev/null ||
  fail "te.txt with its XC header: answers differ from the points' own"
{ echo "$(head -n 1 te.txt)"; cat in.txt; } | "$glide" predict --model m.glide --threads 1 \
  --batch 1 - | diff - plain.txt >/dev/null || fail "XC header on stdin: answers differ"
read -r _ nf _ < <(head -n 1 te.txt)
{ echo "$n $((nf + 1)) 5"; cat in.txt; } >wide.txt
expect_error "wide.txt:1: the XC header declares $((nf + 1)) features, the model has $nf" \
  "$glide" predict --model m.glide wide.txt
{ echo "$n $nf 5 7"; cat in.txt; } >badhead.txt
col=$((${#n} + ${#nf} + 5))  # where the 7 stands
expect_error "badhead.txt:1:$col: expected the end of the header line after 3 numbers, got '7'" \
  "$glide" predict --model m.glide badhead.txt

# The same points as .gds and as zstd-compressed text: the same answers, a line per point; an
# empty file, none.
"$glide" data convert te.txt -o te.gds >/dev/null 2>&1
"$glide" data convert te.txt -o te.txt.zst >/dev/null 2>&1
for f in te.gds te.txt.zst; do
  "$glide" predict --model m.glide --threads 1 --batch 1 "$f" | diff - plain.txt >/dev/null ||
    fail "$f: answers differ from the text file's"
done
: >empty.txt
[ -z "$("$glide" predict --model m.glide empty.txt)" ] || fail "empty.txt: answers"
"$glide" data synth --preset tiny --features $((nf + 1)) --points 5 -o wide.gds 2>/dev/null
expect_error "wide.gds: has $((nf + 1)) features, the model has $nf" \
  "$glide" predict --model m.glide wide.gds

# Errors name the file and line.
printf '3:1\nbad\n' >bad.txt
expect_error "bad.txt:2" "$glide" predict --model m.glide bad.txt
expect_error "missing.txt" "$glide" predict --model m.glide missing.txt
echo "predict CLI tests passed"
