#!/usr/bin/env bash
# Every `glide bench` benchmark runs on a small setting and prints what it measured; `glide
# --help` names every benchmark there is; bad comma lists are errors naming the flag and the item.
# (Timings are not checked: only that each benchmark runs and reports.)
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"
# run NAME ARGS...: runs `glide bench NAME ARGS...` into NAME.txt, failing with its output.
run() {
  local name=$1
  shift
  "$glide" bench "$name" "$@" >"$name.txt" 2>&1 || { cat "$name.txt" >&2; fail "bench $name $*"; }
}
expect() {  # expect FILE TEXT: FILE has a line with TEXT
  grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }
}

# The help lists what there is.
"$glide" --help >help.txt
"$glide" bench --help >bench_help.txt
for b in $(awk '/^benchmarks:/ {on = 1; next} on && NF {print $1}' bench_help.txt); do
  grep -q "^  bench .*\b$b\b" help.txt || fail "glide --help does not list benchmark '$b'"
done
[ "$(awk '/^benchmarks:/ {on = 1; next} on && NF' bench_help.txt | wc -l)" -eq 8 ] ||
  fail "glide bench --help lists $(wc -l <bench_help.txt) lines, expected 8 benchmarks"
expect help.txt "int8 or bf16"

run data --points 2000 --reps 1
expect data.txt "load .gds"
run hash --neurons 2000 --dim 32 --K 4 --L 4 --queries 5 --reps 20 --sparse-dim 1000 \
  --sparse-nnz 10 --families simhash,dwta
expect hash.txt "recall-union"
expect hash.txt "dwta"
run train --preset tiny --train-points 2000 --test-points 200 --samples 1024 \
  --one-thread-samples 256 --dense-samples 512 --batch 64 --bench-threads 1
for v in lsh random dense; do grep -q "^$v " train.txt || { cat train.txt >&2; fail "no $v row"; }; done
expect train.txt "P@1 @common"
expect train.txt '"lr_schedule":"linear"'  # glide train's schedule, not a constant lr
run train --preset tiny --train-points 2000 --test-points 200 --samples 512 \
  --one-thread-samples 128 --batch 64 --bench-threads 1 --precisions fp32,bf16
expect train.txt "lsh/bf16"
expect train.txt "precision vs fp32"
run hidden --preset tiny --train-points 2000 --test-points 200 --samples 512 --batch 64 \
  --hidden 32,64,32 --layer-sparsities 0.25 --bench-threads 1
expect hidden.txt "P@1 same time"
expect hidden.txt "lsh 0.25"
run quant --preset tiny --points 2000 --eval-points 200 --latency-points 5 --modes exact
expect quant.txt "int8-tensor"
if grep -q " sampled " quant.txt; then fail "bench quant --modes exact measured sampled mode"; fi
run infer --preset tiny --eval-points 200 --latency-points 5 --probes 1,4
for row in "exact fp32" "exact int8" "LSH tables fp32" "index fp32 probes 1" "index fp32 probes 4"; do
  expect infer.txt "$row"
done
expect infer.txt "recall@5"
run cache --preset tiny --test-points 300 --warmup 200 --requests 100 --skews 1.0,uniform \
  --hidden 32 --threads 1
expect cache.txt "uniform"
expect cache.txt "p99 us"

"$glide" data synth --preset tiny --points 2000 --seed 3 -o train.gds --test-points 200 \
  --test-output test.gds >/dev/null 2>&1 || fail "data synth"
"$glide" train --train train.gds -o m.glide --epochs 1 -q >/dev/null 2>&1 || fail "train"
run serve --model m.glide --data test.gds --inputs 50 --seconds 0.2 --concurrency 1,2
expect serve.txt "p99 ms"
expect serve.txt "alone/s"
run quant --model m.glide --test test.gds --eval-points 100 --latency-points 5
expect quant.txt "fp32"
run infer --model m.glide --test test.gds --eval-points 100 --latency-points 5 --probes 2
expect infer.txt "(from the model file)"
expect infer.txt "index int8 probes 2"

# Bad lists name the flag and the item.
bad() {  # bad TEXT ARGS...: `glide bench ARGS...` fails with TEXT in its error
  local text=$1
  shift
  if "$glide" bench "$@" >/dev/null 2>err.txt; then fail "bench $* succeeded"; fi
  grep -qF -- "$text" err.txt || fail "bench $*: expected '$text', got: $(cat err.txt)"
}
bad "--concurrency: bad item 'x' in '1,x'" serve --model m.glide --concurrency 1,x
bad "--concurrency: empty item in '1,,2'" serve --model m.glide --concurrency 1,,2
bad "--modes: bad item 'smapled'" quant --model m.glide --test test.gds --modes exact,smapled
bad "--skews: bad item 'zipf'" cache --model m.glide --data test.gds --skews zipf
bad "--variants: bad item 'dens'" train --preset tiny --train-points 500 --variants lsh,dens
bad "--layer-sparsities: bad item '2'" hidden --preset tiny --train-points 500 \
  --layer-sparsities 0.1,2
bad "--families: bad item 'minhash'" hash --neurons 100 --families simhash,minhash
bad "--model needs --test" quant --model m.glide
bad "--model needs --data" cache --model m.glide
bad "--probes: bad item '0'" infer --model m.glide --test test.gds --probes 4,0
echo ok
