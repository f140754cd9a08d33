#!/usr/bin/env bash
# kill -9 at moments spread over `glide train`'s save: the target always loads (the previous model
# or the new one, never a torn file), and the next save leaves no temporary file behind.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

"$glide" data synth --preset tiny --points 2000 --seed 5 -o train.gds 2>/dev/null
"$glide" train --train train.gds -o m.glide --epochs 0.1 --threads 2 -q >/dev/null 2>&1 ||
  fail "first train"
loads() { printf '3:1 7:0.5\n' | "$glide" predict --model m.glide -k 3 >/dev/null 2>&1; }
loads || fail "the first model does not load"

# A wide network, so that its save (weights and Adam moments, ~100 MB) takes a while.
killed_in_save=0
for delay in 0 0.02 0.05 0.1 0.2 0.3 0.45 0.6; do
  "$glide" train --train train.gds -o m.glide --hidden 4096 --epochs 0.05 --threads 2 -q \
    --index off >/dev/null 2>&1 &
  pid=$!
  # Wait for the save to begin (its temporary file), then kill it `delay` seconds in.
  for _ in $(seq 600); do
    [ -e "m.glide.tmp.$pid" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  [ -e "m.glide.tmp.$pid" ] && killed_in_save=$((killed_in_save + 1))
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  loads || fail "m.glide does not load after kill -9 ${delay}s into the save"
done
[ "$killed_in_save" -ge 4 ] || fail "only $killed_in_save kills landed during a save"

# The next save removes what the killed ones left.
"$glide" train --train train.gds -o m.glide --epochs 0.1 --threads 2 -q >/dev/null 2>&1 ||
  fail "train after the kills"
loads || fail "the model saved after the kills does not load"
leftover=$(ls m.glide.tmp.* 2>/dev/null || true)
[ -z "$leftover" ] || fail "temporary files survived the next save: $leftover"
echo "ok"
