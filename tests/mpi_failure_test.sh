#!/usr/bin/env bash
# A rank that dies ends the job within seconds, non-zero, with a message naming the rank (no
# rank waits forever in a collective): one killed with SIGKILL mid-training, one whose shard file
# is missing when it resumes (it fails alone; the others are already training).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/mpi_test_lib.sh" "$@"

# Waits up to 60 s for the job `pid`; fails the test if it is still running (a hang).
finish_within() {
  local pid=$1
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; return $?; }
    sleep 0.1
  done
  kill -9 "$pid"
  fail "the job still runs 60 s after a rank failed"
}

# mpirun itself in the background ($! is its pid, the ranks its children).
"$mpiexec" --oversubscribe -np 2 "$glide" train --train tr.gds -o long.glide --epochs 100000 \
  "${det[@]}" >out.txt 2>err.txt &
job=$!
victim=""
for _ in $(seq 100); do  # until both ranks train (their progress is quiet: wait for the pid)
  victim=$(rank_pid 1)
  [ -n "$victim" ] && break
  sleep 0.1
done
[ -n "$victim" ] || { kill -9 "$job"; fail "no rank 1 under mpirun"; }
sleep 1
kill -9 "$victim"
status=0
finish_within "$job" || status=$?
[ "$status" -ne 0 ] || fail "the job exited 0 after a rank was killed"
grep -q "rank 1" err.txt || { cat err.txt >&2; fail "no message naming rank 1"; }
[ ! -e long.glide ] || fail "a manifest was written by a failed job"

# A failure inside one rank: it aborts the job and names itself.
ranks 2 "$glide" train --train tr.gds -o m.glide --epochs 0.2 "${det[@]}" >/dev/null 2>&1
shard1=$(ls m.glide.b*.shard-1-of-2)
rm "$shard1"
ranks 2 "$glide" train --train tr.gds --resume m.glide -o m2.glide --epochs 100 "${det[@]}" \
  >out.txt 2>err.txt &
status=0
finish_within $! || status=$?
[ "$status" -ne 0 ] || fail "resuming without shard 1 exited 0"
grep -q "glide: rank 1 of 2: .*$shard1" err.txt || { cat err.txt >&2; fail "message"; }
echo "MPI failure tests passed"
