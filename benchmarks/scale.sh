#!/usr/bin/env bash
# Label-sharded training's rank sweep (docs/scaling.md): samples/s, bytes reduced per batch and the
# share of rank 0's training time spent in the reductions, for 1, 2, ... ranks on this machine.
# Usage: benchmarks/scale.sh GLIDE TRAIN_DATA [RANKS (default "1 2")] [SECONDS (default 30)]
#        [THREADS PER RANK (default: cores / ranks)] [more glide train flags...]
# e.g.   benchmarks/scale.sh build/apps/glide a670.gds "1 2 4 8" 60
set -euo pipefail
glide=$1 data=$2 ranks=${3:-"1 2"} seconds=${4:-30} threads=${5:-}
shift $(($# < 5 ? $# : 5))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%6s %8s %12s %14s %12s\n' ranks threads samples/s bytes/batch reductions
for n in $ranks; do
  t=${threads:-$(($(nproc) / n > 0 ? $(nproc) / n : 1))}
  mpirun --oversubscribe -np "$n" "$glide" train --train "$data" -o "$out/m.glide" --epochs 1000 \
    --max-seconds "$seconds" --threads "$t" --index off -q "$@" >"$out/log" 2>&1 ||
    { cat "$out/log" >&2; exit 1; }
  rate=$(sed -n 's/.*(\([0-9]*\) samples\/s).*/\1/p' "$out/log")
  bytes=$(sed -n 's/^exchange: \([0-9]*\) bytes.*/\1/p' "$out/log")
  share=$(sed -n 's/.*rank 0 spent \([0-9.]*%\).*/\1/p' "$out/log")
  printf '%6s %8s %12s %14s %12s\n' "$n" "$t" "$rate" "${bytes:-0}" "${share:--}"
done
