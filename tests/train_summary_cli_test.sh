#!/usr/bin/env bash
# `glide train`'s closing lines: the summary's time and samples/s are training time alone, with
# the evaluations' time beside it; a run stopped by Ctrl-C ends its progress line where it
# stopped (not 100%); resuming a finished model is refused with the samples it has trained;
# where the wide layer check finds the network alone ahead, the run trains every planned sample
# after the check.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 600 --test-points 100 -o tr.gds --test-output te.gds \
  2>/dev/null

# Evaluations during training are reported beside the training time.
"$glide" train --train tr.gds --test te.gds --eval-every 2 -o m.glide --epochs 0.5 --threads 1 \
  -q >out.txt 2>err.txt
grep -q '^trained [0-9]* samples in [0-9.]* s ([0-9]* samples/s) after [0-9.]* s of setup (data [0-9.]* s); evaluation [0-9.]* s; time split' \
  out.txt || { cat out.txt >&2; fail "summary without the evaluation time"; }

# Resuming the finished model: nothing to train, said in one error line, and no file written.
expect_error "m.glide: has trained 300 samples (0.50 epochs of this training set) already; --epochs 0.5 asks for 300: nothing to train" \
  "$glide" train --train tr.gds --resume m.glide -o m2.glide -q
[ ! -e m2.glide ] || fail "a resume of a finished model wrote m2.glide"

# Where the network alone beats the wide start (item types whose labels are facets they share),
# the run trains it from the start, with the rare labels' path: the summary counts the planned 5
# epochs of 6,000 points, the log's setup record no samples, and the model has trained them all
# (resuming it for the same epochs is refused with its count).
"$glide" data synth --points 6000 --features 5000 --labels 500 --mean-features 25 --types 100 \
  -o facets.gds 2>/dev/null
"$glide" train --train facets.gds -o f.glide --threads 1 --log-jsonl f.jsonl >out.txt 2>err.txt
tr '\r' '\n' <err.txt | grep -q "^wide layer dropped, the network alone ahead" ||
  { cat err.txt >&2; fail "the check did not drop the wide layer"; }
run=$(sed -n 's/^trained \([0-9]*\) samples in .*/\1/p' out.txt)
[ "$run" = 30000 ] || { cat out.txt >&2; fail "samples: '$run', not 5 epochs of 6,000"; }
grep '"type":"setup"' f.jsonl | grep -q '"samples"' && fail "the setup record counts samples"
expect_error "f.glide: has trained 30000 samples (5.00 epochs of this training set) already" \
  "$glide" train --train facets.gds --resume f.glide -o f2.glide -q

# Ctrl-C mid-run: the last progress line shows how far training got.
"$glide" train --train tr.gds -o m3.glide --epochs 100000 --threads 1 --log-jsonl log.jsonl \
  >out.txt 2>err.txt &
pid=$!
for _ in $(seq 300); do
  grep -q '"type":"progress"' log.jsonl 2>/dev/null && break
  sleep 0.1
done
grep -q '"type":"progress"' log.jsonl || { kill "$pid"; fail "training did not start"; }
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 130 ] || { cat err.txt >&2; fail "Ctrl-C exit code $rc"; }
last=$(grep '^train: ' err.txt | tail -n 1)
[ -n "$last" ] || { cat err.txt >&2; fail "no progress line"; }
case "$last" in
  *"(100.0%)"*) fail "stopped run's progress says 100%: $last" ;;
esac
echo "train summary CLI tests passed"
