#!/usr/bin/env bash
# `glide train --valid-points / --valid`: the model saved is the one of the best validation, not
# the last (re-scored on the same held-out points it reproduces the log's best record), --patience
# stops the run after that many validations without a new best, and bad flags are refused.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 600 --test-points 100 -o tr.txt --test-output te.txt \
  2>/dev/null
# A constant, large lr over many epochs: the validation score peaks early and falls.
overfit=(--wide off --threads 1 --index off --epochs 60 --eval-every 8 --output-lr 1 --lr 0.1
         --lr-schedule constant --lr-decay 1)
"$glide" train --train tr.txt --valid-points 100 "${overfit[@]}" -o m.glide --log-jsonl l.jsonl \
  -q >out.txt 2>err.txt || { cat err.txt >&2; fail "training with --valid-points"; }
grep -q '^validation: best p1+p5 .* on 100 points; that model is the one saved$' out.txt ||
  { cat out.txt >&2; fail "no validation line, or the last model was the best"; }

# The log: one record per validation, "best" exactly where the score beat every earlier one.
read -r best_p1 best_p5 last_p1 last_p5 < <(python3 - <<'PY'
import json, sys
recs = [json.loads(l) for l in open("l.jsonl") if '"type":"valid"' in l]
assert len(recs) == 15, len(recs)  # 60 epochs of 2 batches, one validation every 8 batches
best = None
for r in recs:
    score = r["p1"] + r["p5"]
    if r["best"] != (best is None or score > best["p1"] + best["p5"]):
        sys.exit("wrong best flag at epoch %s" % r["epoch"])
    if r["best"]:
        best = r
print("%.4f %.4f %.4f %.4f" % (best["p1"], best["p5"], recs[-1]["p1"], recs[-1]["p5"]))
PY
)
[ "$best_p1 $best_p5" != "$last_p1 $last_p5" ] || fail "the last validation scored as the best"

# The held-out points are every 6th of the 600 (the last of each stride): the saved model scores
# on them what the best validation scored.
awk 'NR == 1 { next } (NR - 2) % 6 == 5' tr.txt >held.body
{ echo "100 $(head -1 tr.txt | cut -d' ' -f2-)"; cat held.body; } >held.txt
"$glide" eval --model m.glide --test held.txt --mode exact --threads 1 >eval.txt 2>&1
got=$(awk '$1 == "exact" { print $2, $4 }' eval.txt)
[ "$got" = "$best_p1 $best_p5" ] ||
  { cat eval.txt >&2; fail "saved model scores '$got' on the held-out points, best was '$best_p1 $best_p5'"; }

# --patience 3: three validations without a new best end the run.
"$glide" train --train tr.txt --valid-points 100 "${overfit[@]}" --patience 3 -o p.glide \
  --log-jsonl p.jsonl -q >out.txt 2>err.txt || { cat err.txt >&2; fail "training with --patience"; }
grep -q '^stopped early: 3 validations in a row without a new best' out.txt ||
  { cat out.txt >&2; fail "no early stop"; }
python3 - <<'PY' || fail "patience: wrong validations"
import json
recs = [json.loads(l) for l in open("p.jsonl") if '"type":"valid"' in l]
last_best = max(i for i, r in enumerate(recs) if r["best"])
assert len(recs) - 1 - last_best == 3, [r["best"] for r in recs]
PY
trained=$(sed -n 's/^trained \([0-9]*\) samples.*/\1/p' out.txt)
[ "$trained" -lt 30000 ] || fail "patience did not shorten the run: $trained samples"

# Ctrl-C after the best: the output keeps the best model (what re-scores as the best record).
"$glide" train --train tr.txt --valid-points 100 "${overfit[@]}" --epochs 100000 -o c.glide \
  --log-jsonl c.jsonl >out.txt 2>err.txt &
pid=$!
for _ in $(seq 300); do
  [ -f c.jsonl ] && [ "$(grep -c '"best":false' c.jsonl)" -ge 3 ] && break
  sleep 0.1
done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 130 ] || { cat err.txt >&2; fail "Ctrl-C exit code $rc"; }
tr '\r' '\n' <err.txt | grep -q "^interrupted: c.glide keeps the best validation model" ||
  { cat err.txt >&2; fail "no word on the kept model"; }
want=$(python3 -c '
import json
recs = [json.loads(l) for l in open("c.jsonl") if "\"type\":\"valid\"" in l]
best = [r for r in recs if r["best"]][-1]
print("%.4f %.4f" % (best["p1"], best["p5"]))')
"$glide" eval --model c.glide --test held.txt --mode exact --threads 1 >eval.txt 2>&1
got=$(awk '$1 == "exact" { print $2, $4 }' eval.txt)
[ "$got" = "$want" ] || { cat eval.txt >&2; fail "interrupted: '$got' on the held-out points, best was '$want'"; }

# A validation file, best by PSP@5.
"$glide" train --train tr.txt --valid te.txt --best-by psp5 --epochs 2 --threads 1 --index off \
  -o v.glide -q >out.txt 2>err.txt || { cat err.txt >&2; fail "training with --valid"; }
grep -q '^validation: best psp5 .*, on 100 points' out.txt || { cat out.txt >&2; fail "--valid"; }

expect_error "--valid-points 301: must leave at least half" \
  "$glide" train --train tr.txt --valid-points 301 -o x.glide
expect_error "--patience and --best-by need validation points" \
  "$glide" train --train tr.txt --valid-points 0 --patience 2 -o x.glide
expect_error "--patience and --best-by need validation points" \
  "$glide" train --train tr.txt --patience 2 -o x.glide
expect_error "--best-by must be p1+p5, p1, p5 or psp5, got 'p3'" \
  "$glide" train --train tr.txt --valid-points 50 --best-by p3 -o x.glide
# A validation or test file wider than a resumed model is refused before training, not after it.
printf '2 3000 300\n0 2999:1\n1 5:1\n' >wide.txt
expect_error "--valid wide.txt: 3000 features, the model has 2000" \
  "$glide" train --train tr.txt --resume v.glide --epochs 3 --valid wide.txt -o w.glide
expect_error "--test wide.txt: 3000 features, the model has 2000" \
  "$glide" train --train tr.txt --resume v.glide --epochs 3 --test wide.txt -o w.glide
expect_error "give one of them" \
  "$glide" train --train tr.txt --valid-points 50 --valid te.txt -o x.glide
echo "validation CLI tests passed"
