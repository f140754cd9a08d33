#!/usr/bin/env bash
# Label-sharded training under mpirun: 2 and 3 ranks give the weights of one process after a
# dozen batches (softmax with the wide layer, and sigmoid), and their evaluation (at the end of
# training, and glide eval under mpirun) equals the one-process evaluation of the merged model.
# Evaluations during training and validation under mpirun score, keep the model and stop where
# one process does.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/mpi_test_lib.sh" "$@"

"$glide" train --train tr.gds -o one.glide --epochs 0.7 "${det[@]}" --index off >/dev/null 2>&1
for n in 2 3; do
  ranks "$n" "$glide" train --train tr.gds --test te.gds -o "n$n.glide" --epochs 0.7 "${det[@]}" \
    >"train$n.txt" 2>"err$n.txt" || { cat "err$n.txt" >&2; fail "training on $n ranks"; }
  for r in $(seq 0 $((n - 1))); do
    ls n$n.glide.b*.shard-$r-of-$n >/dev/null 2>&1 || fail "no shard file $r of $n"
  done
  "$compare" one.glide "n$n.glide" "${tol[@]}" >"cmp$n.txt" || { cat "cmp$n.txt" >&2; fail "$n ranks"; }
  # The sharded evaluation at the end of training against one process's of the merged model.
  sharded=$(sed -n 's/^test (exact): P@1 \([0-9.]*\)  P@3 \([0-9.]*\)  P@5 \([0-9.]*\).*/\1 \2 \3/p' \
    "train$n.txt")
  [ -n "$sharded" ] || { cat "train$n.txt" >&2; fail "no test line from $n ranks"; }
  merged=$("$glide" eval --model "n$n.glide" --test te.gds --mode exact | awk '$1 == "exact" {print $2, $3, $4}')
  [ "$sharded" = "$merged" ] || fail "$n ranks: sharded eval '$sharded', merged model '$merged'"
  # Each shard kept its labels' training counts: the merged model's PSP@k is --train's.
  kept=$("$glide" eval --model "n$n.glide" --test te.gds --mode exact |
    awk '$1 == "exact" {print $8, $9, $10}')
  given=$("$glide" eval --model "n$n.glide" --test te.gds --train tr.gds --mode exact |
    awk '$1 == "exact" {print $8, $9, $10}')
  [ -n "$kept" ] && [ "$kept" = "$given" ] || fail "$n ranks: PSP@k kept '$kept', --train '$given'"
done
# glide eval under mpirun: each rank scores its shard (its own file, or re-sharded) of the model.
one=$("$glide" eval --model n2.glide --test te.gds --mode exact | awk '$1 == "exact" {print $2, $3, $4, $5, $6, $7}')
for n in 2 3; do
  got=$(ranks "$n" "$glide" eval --model n2.glide --test te.gds --threads 1 2>err.txt |
    awk '$1 == "exact" {print $2, $3, $4, $5, $6, $7}') || { cat err.txt >&2; fail "eval on $n ranks"; }
  [ "$got" = "$one" ] || fail "eval on $n ranks: '$got', one process: '$one'"
done
# One-vs-all loss: nothing shared but the gradient to the hidden layer. The wide layer at norm
# power 0.5 starts each label from the whole training set's median label norm, on every rank,
# and with two share rounds from the whole set's centroids (a point's shares need all its labels).
"$glide" train --train tr.gds -o sig1.glide --epochs 0.7 --loss sigmoid --wide-norm-power 0.5 \
  --wide-share-rounds 2 "${det[@]}" --index off >/dev/null 2>&1
ranks 2 "$glide" train --train tr.gds -o sig2.glide --epochs 0.7 --loss sigmoid \
  --wide-norm-power 0.5 --wide-share-rounds 2 "${det[@]}" >/dev/null 2>err.txt ||
  { cat err.txt >&2; fail "sigmoid on 2 ranks"; }
"$compare" sig1.glide sig2.glide "${tol[@]}" >cmp.txt || { cat cmp.txt >&2; fail "sigmoid"; }
# Test evaluations during training (--eval-every) score what one process's do.
"$glide" train --train tr.gds --test te.gds -o e1.glide --epochs 1 "${det[@]}" --index off \
  --eval-every 4 --log-jsonl e1.jsonl >/dev/null 2>&1 || fail "--eval-every, one process"
ranks 2 "$glide" train --train tr.gds --test te.gds -o e2.glide --epochs 1 "${det[@]}" \
  --eval-every 4 --log-jsonl e2.jsonl >/dev/null 2>err.txt ||
  { cat err.txt >&2; fail "--eval-every on 2 ranks"; }
evals() {
  grep '"type":"eval"' "$1" |
    sed -E 's/.*"p1":([0-9.e-]+).*"p5":([0-9.e-]+).*"psp5":([0-9.e-]+).*"samples":([0-9]+).*/\4 \1 \2 \3/'
}
[ "$(evals e1.jsonl | wc -l)" -ge 4 ] || { cat e1.jsonl >&2; fail "too few evaluations logged"; }
[ "$(evals e1.jsonl)" = "$(evals e2.jsonl)" ] ||
  fail "evaluations: one process '$(evals e1.jsonl)', 2 ranks '$(evals e2.jsonl)'"
# Validation: every rank scores its shard of the validation points, and the run keeps the best
# model and stops (--patience) where one process does, with the whole training set's PSP@k.
for valid in "--valid te.gds" "--valid-points 40"; do
  # shellcheck disable=SC2086
  "$glide" train --train tr.gds --test te.gds -o v1.glide --epochs 3 "${det[@]}" --index off \
    $valid --eval-every 5 --best-by psp5 --patience 3 >v1.txt 2>&1 || { cat v1.txt >&2; fail "$valid"; }
  # shellcheck disable=SC2086
  ranks 2 "$glide" train --train tr.gds --test te.gds -o v2.glide --epochs 3 "${det[@]}" \
    $valid --eval-every 5 --best-by psp5 --patience 3 >v2.txt 2>err.txt ||
    { cat err.txt >&2; fail "$valid on 2 ranks"; }
  for f in '^validation:' '^stopped early' '^test (exact)'; do
    one=$(grep "$f" v1.txt | sed 's/ ([0-9]* points, .*//') || true
    two=$(grep "$f" v2.txt | sed 's/ ([0-9]* points, .*//') || true
    [ -n "$one" ] || { cat v1.txt >&2; fail "$valid: no '$f' line from one process"; }
    [ "$one" = "$two" ] || fail "$valid: one process '$one', 2 ranks '$two'"
  done
  grep -q 'that model is the one saved' v2.txt || { cat v2.txt >&2; fail "$valid: best not kept"; }
done
# The kept model is the best validation's: the merged model scores the validation file as it did.
ranks 2 "$glide" train --train tr.gds -o vf.glide --epochs 3 "${det[@]}" --valid te.gds \
  --eval-every 5 --best-by psp5 --patience 3 >vf.txt 2>err.txt || { cat err.txt >&2; fail "vf"; }
best=$(sed -n 's/^validation: .*(P@1 \([0-9.]*\), P@5 \([0-9.]*\), PSP@5 \([0-9.]*\)).*/\1 \2 \3/p' vf.txt)
kept=$("$glide" eval --model vf.glide --test te.gds --train tr.gds --mode exact |
  awk '$1 == "exact" {print $2, $4, $10}')
[ -n "$best" ] && [ "$best" = "$kept" ] || fail "best validation '$best', kept model '$kept'"
# It was reloaded as the best: saved again with the run's label counts.
counted=$("$glide" eval --model vf.glide --test te.gds --mode exact | awk '$1 == "exact" {print $2, $4, $10}')
[ "$counted" = "$kept" ] || fail "the reloaded best's PSP@k: kept counts '$counted', --train '$kept'"
# glide eval under mpirun gives PSP@k from --train as one process does.
scores='$1 == "exact" {print $2, $3, $4, $5, $6, $7, $8, $9, $10}'
one=$("$glide" eval --model vf.glide --test te.gds --train tr.gds --mode exact | awk "$scores")
two=$(ranks 2 "$glide" eval --model vf.glide --test te.gds --train tr.gds --threads 1 2>err.txt |
  awk "$scores") || { cat err.txt >&2; fail "eval --train on 2 ranks"; }
[ -n "$two" ] && [ "$one" = "$two" ] || fail "eval --train: one process '$one', 2 ranks '$two'"
# Without --train, from the counts the model keeps: on 2 ranks each reads its own shard file's and
# they gather the rest; on 3 each re-shards the merged model's; one.glide is one file.
for n in 2 3; do
  got=$(ranks "$n" "$glide" eval --model vf.glide --test te.gds --threads 1 2>err.txt |
    awk "$scores") || { cat err.txt >&2; fail "eval on $n ranks without --train"; }
  [ -n "$got" ] && [ "$one" = "$got" ] || fail "kept counts: one process '$one', $n ranks '$got'"
done
one=$("$glide" eval --model one.glide --test te.gds --mode exact | awk "$scores")
got=$(ranks 2 "$glide" eval --model one.glide --test te.gds --threads 1 2>err.txt |
  awk "$scores") || { cat err.txt >&2; fail "eval of one file on 2 ranks"; }
[ -n "$(echo "$one" | awk '{print $9}')" ] && [ "$one" = "$got" ] ||
  fail "one file's kept counts: one process '$one', 2 ranks '$got'"
echo "MPI training tests passed"
