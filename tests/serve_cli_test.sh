#!/usr/bin/env bash
# `glide serve` as a process on an ephemeral 127.0.0.1 port: it prints its address, agrees with
# `glide predict` on the same inputs, answers a client that stalls mid-request with 408 after
# --header-timeout, reloads on SIGHUP (a damaged file keeps the old model) and exits 0 on
# SIGTERM. Every wait is bounded.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$@"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; [ -f err.txt ] && tail -5 err.txt >&2; exit 1; }

"$glide" data synth --preset tiny --seed 3 --points 2000 -o train.gds --test-points 20 \
  --test-output test.gds >/dev/null 2>&1
"$glide" train --train train.gds -o model.glide --epochs 1 -q >/dev/null 2>&1
"$glide" data convert test.gds -o test.txt >/dev/null 2>&1
tail -n +2 test.txt >inputs.txt  # XC text without its header: one "labels f:v ..." line per input
"$glide" predict --model model.glide --k 3 --batch 1 <inputs.txt >predict.txt

# Deadline flags must be positive numbers of seconds.
if "$glide" serve --model tiny=model.glide --port 0 --header-timeout 0 >/dev/null 2>flag_err.txt; then
  fail "--header-timeout 0 accepted"
fi
grep -q -- "--header-timeout" flag_err.txt || fail "the refused flag is not named"

"$glide" serve --model tiny=model.glide --port 0 --max-delay-us 100 --header-timeout 1 \
  >out.txt 2>err.txt &
pid=$!
url=$(served_url out.txt) || fail "no listening address printed"

# Each input line as a v1 request; keep the labels of each answer, space separated.
http_predict_labels "$url" tiny 3 <inputs.txt >served.txt
# glide predict prints "label:score ..."; labels must agree exactly.
sed -E 's/:[^ ]*//g' predict.txt >predict_labels.txt
[ "$(wc -l <served.txt)" -eq 20 ] || fail "expected 20 answers"
diff predict_labels.txt served.txt >/dev/null || fail "labels differ from glide predict"

# A client that sends part of its headers and stalls gets a 408 (and the connection closes).
exec 3<>"/dev/tcp/127.0.0.1/${url##*:}"
printf 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n' >&3
answer=$(timeout 10 cat <&3 || true)
exec 3<&-
echo "$answer" | head -1 | grep -q '^HTTP/1.1 408' || fail "no 408 for a stalled request"
# A POST with no body and no Content-Length (curl -X POST) is answered at once.
code=$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' -X POST "$url/v1/models/tiny:predict")
[ "$code" = 400 ] || fail "a POST without a body: $code"

# SIGHUP reloads; a damaged file keeps the old model serving.
kill -HUP "$pid"
for _ in $(seq 100); do grep -q "version 2" err.txt && break; sleep 0.1; done
grep -q "reloaded model 'tiny'.*version 2" err.txt || fail "SIGHUP did not reload"
cp model.glide good.glide
echo damaged >model.glide
kill -HUP "$pid"
for _ in $(seq 100); do grep -q "still serving version 2" err.txt && break; sleep 0.1; done
grep -q "still serving version 2" err.txt || fail "damaged reload not reported"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST --data-binary @body.json \
  "$url/v1/models/tiny:predict")
[ "$code" = 200 ] || fail "not serving after a damaged reload ($code)"
grep -q 'POST /v1/models/tiny:predict 200' err.txt || fail "no access log line"

# SIGTERM: exits 0.
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
wait "$pid" || fail "exit code $? after SIGTERM"
pid=""
grep -q "stopped" err.txt || fail "no stop message"
echo "serve cli: ok"
