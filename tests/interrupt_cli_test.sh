#!/usr/bin/env bash
# Ctrl-C during `glide train`: the first stops training and saves; one more while that save runs
# says so (it killed the process without a word) and lets the save finish; a third abandons the
# save, saying so, and leaves the previous file as it was.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 2000 --seed 5 -o train.gds 2>/dev/null
# A wide network, so that saving it (weights and Adam moments, ~100 MB) takes a while.
train() {  # OUTPUT: trains in the background until interrupted; sets pid
  "$glide" train --train train.gds -o "$1" --hidden 4096 --epochs 1000 --threads 2 \
    --log-jsonl log.jsonl >out.txt 2>err.txt &
  pid=$!
}
wait_for() {  # FILE PATTERN: until FILE has a line with PATTERN (at most ~60 s)
  for _ in $(seq 600); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat err.txt >&2; fail "train exited waiting for '$2'"; }
    sleep 0.1
  done
  fail "no '$2' in $1"
}

# Two: the save completes and the model loads.
train m.glide
wait_for log.jsonl '"progress"'
kill -INT "$pid"
wait_for err.txt "saving a checkpoint"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
grep -qF "saving the model to m.glide; press Ctrl-C again to abandon the save" err.txt ||
  { cat err.txt >&2; fail "the second Ctrl-C during the save said nothing (exit $rc)"; }
[ "$rc" -eq 130 ] || { cat err.txt >&2; fail "exit $rc after an interrupted run, expected 130"; }
printf '3:1 7:0.5\n' | "$glide" predict --model m.glide -k 3 >pred.txt 2>/dev/null ||
  fail "the model saved after two Ctrl-C does not load"

# Three: the save is abandoned, and the model of the first run stays.
before=$(md5sum <m.glide)
rm -f log.jsonl
train m.glide
wait_for log.jsonl '"progress"'
kill -INT "$pid"
wait_for err.txt "saving a checkpoint"
kill -INT "$pid"
wait_for err.txt "press Ctrl-C again to abandon the save"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
grep -qF "save abandoned: m.glide is as it was before this run" err.txt ||
  { cat err.txt >&2; fail "the third Ctrl-C did not abandon the save (exit $rc)"; }
[ "$rc" -eq 130 ] || fail "exit $rc after an abandoned save, expected 130"
[ "$(md5sum <m.glide)" = "$before" ] || fail "an abandoned save changed m.glide"
echo "ok"
