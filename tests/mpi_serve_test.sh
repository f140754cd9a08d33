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
for _ in $(seq 200); do grep -q "listening on" out.txt 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' out.txt) || { kill -9 "$job"; cat err.txt >&2; fail "no address"; }

while read -r line; do
  echo "$line" | awk '{ ids = ""; vals = "";
    for (i = 1; i <= NF; ++i) { if (split($i, p, ":") != 2) continue;
      ids = ids (ids == "" ? "" : ",") p[1]; vals = vals (vals == "" ? "" : ",") p[2] }
    printf "{\"instances\": [{\"indices\": [%s], \"values\": [%s]}], \"k\": 4}\n", ids, vals }' >body.json
  curl -sS --max-time 10 -X POST --data-binary @body.json "$url/v1/models/m:predict" |
    sed 's/.*"labels":\[\([0-9,]*\)\].*/\1/' | tr ',' ' '
  echo
done <in.txt >got.txt
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
