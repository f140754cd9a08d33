#!/usr/bin/env bash
# Inputs that cannot work fail with one line that says why: a malformed XC header is reported as
# an XC header (file:line:column and the field), not as bad libsvm; a header or a flag that asks
# for a network larger than the machine's memory names the number and the bytes it would need,
# before anything is allocated (not "out of memory"); `data stats` of such a file works.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

printf '2 10\n0 1:1\n1 2:1\n' >short.txt
expect_error "short.txt:1:5: expected a space and the label count" \
  "$glide" train --train short.txt -o m.glide -q
printf '2 10 five\n0 1:1\n1 2:1\n' >bad.txt
expect_error "bad.txt:1:6: expected the label count" "$glide" data stats bad.txt

# A header claiming 4e9 labels in a tiny file; 1e8 features into the widest hidden layer.
printf '2 10 4000000000\n0 1:1\n1 2:1\n' >huge.txt
expect_error "num_labels 4000000000 x hidden 128) needs" \
  "$glide" train --train huge.txt -o m.glide -q
grep -q "bytes\|GB\|TB" err.txt || fail "no size in: $(cat err.txt)"
printf '2 100000000 5\n0 1:1\n1 2:1\n' >wide.txt
expect_error "num_features 100000000 x hidden[0] 65536) needs" \
  "$glide" train --train wide.txt -o m.glide -q --hidden 65536
# Statistics of such a file take memory by its content, not by its header.
( ulimit -v 4000000; "$glide" data stats huge.txt >stats.txt 2>err.txt ) ||
  { cat err.txt >&2; fail "data stats huge.txt"; }
grep -q '^labels *4000000000 (3999999998 never used)' stats.txt || fail "stats: $(cat stats.txt)"
echo "input limit CLI tests passed"
