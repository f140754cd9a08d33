#!/usr/bin/env bash
# glide serve under mpirun: rank 0 answers HTTP, every rank scores its shard of the model; the
# answers' labels are one process's (glide predict), a reload is refused with a message, and a
# SIGTERM to rank 0 stops every rank (exit 0).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/mpi_test_lib.sh" "$@"

"$glide" train --train tr.gds -o m.glide --epochs 0.5 "${det[@]}" --index off >/dev/null 2>&1
# Inputs: the test set's first points, as "f:v ..." lines.
"$glide" data convert te.gds -o te.txt >/dev/null 2>&1
sed -n '2,9p' te.txt | cut -d' ' -f2- >in.txt
"$glide" predict --model m.glide -k 4 <in.txt | sed 's/:[^ ]*//g' >want.txt
[ "$(wc -w <want.txt)" -eq 32 ] || fail "glide predict gave $(cat want.txt)"

"$mpiexec" --oversubscribe -np 3 "$glide" serve --model m=m.glide --port 0 --threads 1 \
  >out.txt 2>err.txt &
job=$!
url=$(served_url out.txt) || { kill -9 "$job"; cat err.txt >&2; fail "no address"; }

http_predict_labels "$url" m 4 <in.txt >got.txt
sed -i 's/ *$//' want.txt got.txt
diff want.txt got.txt >/dev/null || { paste want.txt got.txt >&2; kill -9 "$job"; fail "answers differ"; }

code=$(curl -sS --max-time 10 -o reload.txt -w '%{http_code}' -X POST "$url/v1/models/m:reload")
[ "$code" = 500 ] && grep -q "served across MPI ranks" reload.txt ||
  { cat reload.txt >&2; kill -9 "$job"; fail "reload: $code"; }

kill -TERM "$(rank_pid 0)"
for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$job" 2>/dev/null; then kill -9 "$job"; fail "still running 30 s after SIGTERM"; fi
wait "$job" || { cat err.txt >&2; fail "the job exited $? after SIGTERM to rank 0"; }
echo "MPI serve tests passed"
