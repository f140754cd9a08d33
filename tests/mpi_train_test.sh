#!/usr/bin/env bash
# Label-sharded training under mpirun: 2 and 3 ranks give the weights of one process after a
# dozen batches (softmax with the wide layer, and sigmoid), and their evaluation (at the end of
# training, and glide eval under mpirun) equals the one-process evaluation of the merged model.
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
echo "MPI training tests passed"
