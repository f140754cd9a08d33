#!/usr/bin/env bash
# Sharded checkpoints: one model file per rank plus a manifest that names them; a one-process
# model resumes under mpirun, a sharded one in one process, and on another rank count (re-sharded);
# each resumed run matches the one-process resume. glide eval and glide index read a sharded
# model in one process (merged); a manifest naming a missing shard is an error that names it.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/mpi_test_lib.sh" "$@"

"$glide" train --train tr.gds -o half1.glide --epochs 0.5 "${det[@]}" --index off >/dev/null 2>&1
ranks 2 "$glide" train --train tr.gds -o half2.glide --epochs 0.5 "${det[@]}" >/dev/null 2>err.txt ||
  { cat err.txt >&2; fail "sharded training"; }
head -1 half2.glide | grep -q "glide-sharded-model" || fail "half2.glide is no manifest"
grep -Eq '"half2.glide.b[0-9]+.shard-1-of-2"' half2.glide || fail "the manifest does not name shard 1"
"$compare" half1.glide half2.glide "${tol[@]}" >cmp.txt || { cat cmp.txt >&2; fail "round trip"; }

resume() {  # resume FROM TO [RANKS]
  if [ -n "${3:-}" ]; then
    ranks "$3" "$glide" train --train tr.gds --resume "$1" -o "$2" --epochs 1 "${det[@]}" \
      >/dev/null 2>err.txt || { cat err.txt >&2; fail "resume $1 on $3 ranks"; }
  else
    "$glide" train --train tr.gds --resume "$1" -o "$2" --epochs 1 "${det[@]}" --index off \
      >/dev/null 2>err.txt || { cat err.txt >&2; fail "resume $1"; }
  fi
}
resume half1.glide ref.glide
resume half1.glide one_on_2.glide 2      # one-process model under mpirun
resume half2.glide two_on_1.glide        # sharded model in one process
resume half2.glide two_on_2.glide 2      # each rank its own shard file
resume half2.glide two_on_3.glide 3      # re-sharded
for m in one_on_2 two_on_1 two_on_2 two_on_3; do
  "$compare" ref.glide "$m.glide" "${tol[@]}" >cmp.txt || { cat cmp.txt >&2; fail "$m"; }
done

# One process reads the sharded model: eval, and index (which writes one merged file).
"$glide" eval --model two_on_3.glide --test te.gds --mode exact >eval.txt
grep -q "^exact" eval.txt || fail "eval of a sharded model: $(cat eval.txt)"
"$glide" index --model two_on_3.glide -o merged.glide --train tr.gds >/dev/null 2>&1 ||
  fail "glide index of a sharded model"
"$compare" two_on_3.glide merged.glide 0 >cmp.txt || { cat cmp.txt >&2; fail "merged file"; }

# A checkpoint over the model it resumed: new shard files, then the manifest, then the old files
# go.
before=$(ls half2.glide.b*.shard-*)
resume half2.glide half2.glide 2
after=$(ls half2.glide.b*.shard-*)
[ "$(echo "$after" | wc -l)" -eq 2 ] || fail "shard files after the checkpoint: $after"
[ "$before" != "$after" ] || fail "the checkpoint kept the old shard file names"
"$compare" ref.glide half2.glide "${tol[@]}" >cmp.txt || { cat cmp.txt >&2; fail "overwritten"; }

shard1=$(ls half2.glide.b*.shard-1-of-2)
rm "$shard1"
expect_error "$shard1" "$glide" eval --model half2.glide --test te.gds
echo "MPI checkpoint tests passed"
