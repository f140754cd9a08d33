#!/usr/bin/env bash
# The probes knob of sampled mode on a model with an output index: `glide predict --probes`
# changes the answer, `glide serve` answers a request's "probes" and its own --probes default
# like `glide predict` with the same probes, `glide bench serve` measures exact and sampled mode
# (a row per probes), and bad values are errors naming the flag or field.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; chmod -R u+w "$work"; rm -rf "$work"' EXIT

"$glide" data synth --preset tiny --points 2000 --test-points 100 -o tr.gds --test-output te.txt \
  2>/dev/null
# Without the wide layer, whose best labels are candidates at any probes.
"$glide" train --train tr.gds -o m.glide --epochs 5 --threads 1 --wide off --lr 0.01 \
  --output-lr 0.02 --lr-decay 1 \
  --output-eps 1e-7 -q >/dev/null 2>&1
# No predicted labels in the clusters: one probe then misses some of the exact top labels.
"$glide" index --model m.glide --train tr.gds -o m.glide --predicted 0 >/dev/null 2>&1
tail -n +2 te.txt >in.txt

# Labels only ("label:score ..." -> "label ..."): scores print differently over HTTP.
labels() { sed -E 's/:[^ ]*//g'; }
for p in 1 1000; do
  "$glide" predict --model m.glide --mode sampled --probes "$p" --threads 1 --batch 1 <in.txt |
    labels >"predict$p.txt"
done
[ "$(wc -l <predict1.txt)" -eq 100 ] || fail "predict: expected 100 lines"
cmp -s predict1.txt predict1000.txt && fail "--probes 1 and --probes 1000 answer alike"

# Bad values name the flag, before any model is loaded.
for bad in 0 -1 x 1,2 2.5 1048577; do
  expect_error "--probes: bad value '$bad'" "$glide" predict --model m.glide --probes "$bad" in.txt
  expect_error "--probes: bad value '$bad'" "$glide" serve --model m.glide --port 0 --probes "$bad"
done

# --no-lsh builds no tables, but a model with an index keeps sampled mode through it.
"$glide" serve --model m=m.glide --port 0 --probes 1 --no-lsh --quiet >out.txt 2>err.txt &
pid=$!
for _ in $(seq 100); do grep -q "listening on" out.txt 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' out.txt) || fail "no listening address printed"

# Every input as one instance of one request (EXTRA: more top-level members); the labels of
# each answer on a line.
ask() {
  awk -v extra="$1" 'BEGIN { printf "{\"k\": 5, \"mode\": \"sampled\"%s, \"instances\": [", extra }
    { ids = ""; vals = "";
      for (i = 1; i <= NF; ++i) { if (split($i, p, ":") != 2) continue;
        ids = ids (ids == "" ? "" : ",") p[1]; vals = vals (vals == "" ? "" : ",") p[2] }
      printf "%s{\"indices\": [%s], \"values\": [%s]}", (NR > 1 ? "," : ""), ids, vals }
    END { print "]}" }' in.txt >body.json
  curl -sS --max-time 10 -X POST --data-binary @body.json "$url/v1/models/m:predict" >answer.json
  grep -o '"labels":\[[^]]*\]' answer.json | sed -E 's/"labels":\[//; s/\]//; s/,/ /g'
}
ask "" >served_default.txt
diff predict1.txt served_default.txt >/dev/null || fail "serve --probes 1 differs from predict"
ask ', "probes": 1000' >served1000.txt
diff predict1000.txt served1000.txt >/dev/null || fail "\"probes\": 1000 differs from predict"

for bad in 0 -1 '"x"'; do
  ask ", \"probes\": $bad" >/dev/null || true  # no labels in an error
  grep -q '"error":"probes must be an integer' answer.json || fail "probes $bad: $(cat answer.json)"
done

# glide bench serve: exact and sampled by default on a model with an index, a row per probes.
"$glide" bench serve --model m.glide --data te.txt --inputs 20 --seconds 0.1 --concurrency 1 \
  --probes 1,2 --threads 1 >bench.txt 2>&1 || { cat bench.txt >&2; fail "bench serve"; }
for row in "exact *- on" "sampled *1 on" "sampled *2 on" "sampled *2 off" "probes 2: p50"; do
  grep -q "^ *$row" bench.txt || { cat bench.txt >&2; fail "bench serve: no row '$row'"; }
done
awk '$3 == "on" || $3 == "off" { if ($(NF - 2) != 0) exit 1 }' bench.txt ||
  fail "bench serve: errors"
"$glide" bench serve --model m.glide --data te.txt --inputs 20 --seconds 0.1 --concurrency 1 \
  --mode exact --threads 1 >exact.txt 2>&1 || fail "bench serve --mode exact"
grep -q "^sampled" exact.txt && fail "bench serve --mode exact measured sampled mode"
expect_error "--mode: bad item 'fast'" "$glide" bench serve --model m.glide --mode exact,fast
expect_error "--probes: bad item '0'" "$glide" bench serve --model m.glide --probes 4,0

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" || fail "exit code $? after SIGTERM"
pid=""
echo "probes cli: ok"
