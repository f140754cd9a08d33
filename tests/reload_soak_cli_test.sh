#!/usr/bin/env bash
# 300 reloads of a served model (loopback only, bounded): the resident memory levels off near one
# model's footprint instead of growing with every reload. The model has no output index, so each
# reload builds LSH tables (the many allocations whose retention grew the heap before).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; chmod -R u+w "$work"; rm -rf "$work"' EXIT

"$glide" data synth --points 3000 --labels 1000 --seed 3 -o train.gds 2>/dev/null
"$glide" train --train train.gds -o m.glide --epochs 0.2 --threads 2 -q --index off \
  >/dev/null 2>&1 || fail "train"
"$glide" serve --model m=m.glide --port 0 --quiet >out.txt 2>err.txt &
pid=$!
for _ in $(seq 100); do grep -q "listening on" out.txt 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' out.txt) || fail "no listening address printed"
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
loaded=$(rss_kb)
reload() {  # N: reloads the model N times, each answered 200
  for _ in $(seq "$1"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST "$url/v1/models/m:reload")
    [ "$code" = 200 ] || fail "reload answered $code"
  done
}
reload 100
after100=$(rss_kb)
reload 200
after300=$(rss_kb)
echo "RSS loaded: $((loaded / 1024)) MB, after 100 reloads: $((after100 / 1024)) MB," \
  "after 300: $((after300 / 1024)) MB"
# Levels off: the last 200 reloads add under a tenth of what 100 left (+ 8 MB of slack) ...
[ "$after300" -le $((after100 + after100 / 10 + 8192)) ] ||
  fail "RSS grew from $((after100 / 1024)) to $((after300 / 1024)) MB over the last 200 reloads"
# ... near one model's footprint: within a quarter (+ 32 MB) of the RSS with the first model.
[ "$after300" -le $((loaded + loaded / 4 + 32768)) ] ||
  fail "RSS $((after300 / 1024)) MB after 300 reloads, $((loaded / 1024)) MB with the first model"
printf '{"instances": [{"indices": [1, 2], "values": [1, 1]}], "k": 3}' |
  curl -sf --max-time 10 -X POST --data-binary @- "$url/v1/models/m:predict" >answer.json ||
  fail "predict after the reloads"
grep -q '"labels"' answer.json || fail "no labels after the reloads: $(cat answer.json)"
kill -TERM "$pid"
wait "$pid" || fail "exit code $? after SIGTERM"
pid=""
echo "ok"
