#!/usr/bin/env bash
# `glide report` end to end on small hand-written logs: the table's figures (evaluation time
# subtracted, time to P@1 levels, best P@1 with P@5 and PSP@5 there, samples/s, peak memory),
# series names in the SVG and HTML, a PNG, and clear one-line errors naming file:line for bad
# input; the logs of a run and its --resume (and a --resume with nothing left to train). The chart
# needs gnuplot: without it the input checks still run, then the test reports SKIP (exit 77).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

# Expects failure with exactly one line on stderr that contains $1.
# A glide run: evaluations at 1, 2.5 and 4.5 s of wall time, each taking 0.5 s, so training
# seconds are 1, 2 and 3.5; it reaches P@1 0.5 at 2 s and 0.7 at 3.5 s; 3000 samples in 3.5 s
# of training (the last progress record is at 5 s wall with 1.5 s of evaluation before it).
cat >lsh.jsonl <<'EOF'
{"type":"progress","seconds":0.5,"samples":256,"epoch":0.1,"loss":5.0,"samples_per_second":512}
{"type":"eval","seconds":1.0,"samples":512,"epoch":0.2,"p1":0.25,"p3":0.2,"p5":0.15,"points":100,"eval_seconds":0.5}
{"type":"eval","seconds":2.5,"samples":1024,"epoch":0.4,"p1":0.55,"p3":0.4,"p5":0.31,"points":100,"eval_seconds":0.5}

{"type":"eval","seconds":4.5,"samples":2048,"epoch":0.8,"p1":0.71,"p3":0.5,"p5":0.42,"psp5":0.33,"points":100,"eval_seconds":0.5}
{"type":"progress","seconds":5.0,"samples":3000,"epoch":1.0,"loss":2.0,"samples_per_second":600}
{"type":"meta","name":"glide lsh","peak_rss_mb":321}
EOF
# Without a meta record the series takes the file's name; records it does not know are ignored.
cat >dense_run.jsonl <<'EOF'
{"type":"something-else","x":1}
{"type":"eval","seconds":10,"samples":512,"epoch":0.2,"p1":0.12,"p3":0.1,"p5":0.09,"points":100}
{"type":"eval","seconds":20,"samples":1024,"epoch":0.4,"p1":0.31,"p3":0.2,"p5":0.19,"points":100}
EOF
cat >peers.json <<'EOF'
[
 {"tool": "fastText", "config": "hs dim128", "epochs": 20, "train_seconds": 49.0, "p1": 0.77,
  "p5": 0.41, "psp5": 0.28, "samples": 2048000, "samples_per_second": 41796, "peak_rss_mb": 900},
 {"tool": "fastText", "config": "hs dim128", "epochs": 5, "train_seconds": 16.0, "p1": 0.56,
  "p5": 0.30, "samples": 512000, "samples_per_second": 32000, "peak_rss_mb": 850},
 {"tool": "PyTorch", "config": "full softmax", "epochs": 0.1, "train_seconds": 450, "p1": 0.04,
  "p5": null, "samples_per_second": 86, "peak_rss_mb": null}
]
EOF

"$glide" report --help | grep -q -- --peers || fail "report --help"
"$glide" --help | grep -q report || fail "glide --help lacks report"

# Bad input: one clear line naming the file (and line), and no output file.
printf '{"type":"eval","seconds":1,"samples":5,"p1":0.5}\n\n{"type":"eval","seconds":2,\n' >bad.jsonl
expect_error "bad.jsonl:3: malformed JSON" "$glide" report bad.jsonl -o bad.svg
[ ! -e bad.svg ] || fail "a failed report left an output file"
printf '{"type":"eval","seconds":1,"samples":5,"p1":0.5}\n{"type":"eval","seconds":2,"samples":9}\n' >nop1.jsonl
expect_error "nop1.jsonl:2: missing number 'p1'" "$glide" report nop1.jsonl -o x.svg
printf '{"type":"eval","seconds":1,"samples":5,"p1":"high"}\n' >str.jsonl
expect_error "str.jsonl:1: 'p1' is not a number" "$glide" report str.jsonl -o x.svg
printf '[1,2]\n' >arr.jsonl
expect_error "arr.jsonl:1: expected a JSON object" "$glide" report arr.jsonl -o x.svg
printf '{"type":"eval","seconds":5,"samples":5,"p1":0.5}\n{"type":"eval","seconds":1,"samples":9,"p1":0.6}\n' >twice.jsonl
printf '{"type":"start","resume":"yes"}\n' >badstart.jsonl
expect_error "badstart.jsonl:1: 'resume' is not true or false" "$glide" report badstart.jsonl -o x.svg
expect_error "missing.jsonl: cannot open" "$glide" report missing.jsonl -o x.svg
printf '[\n {"tool": "x", "train_seconds": 1, "p1": 0.5},\n {"tool": "y", "train_seconds": }\n]\n' >badpeers.json
expect_error "badpeers.json:3: malformed JSON" "$glide" report --peers badpeers.json -o x.svg
printf '{"type":"eval","seconds":1,"samples":5,"p1":0.5,"psp5":1.5}\n' >badpsp.jsonl
expect_error "badpsp.jsonl:1: 'psp5' is not within [0, 1]" "$glide" report badpsp.jsonl -o x.svg
printf '[{"tool": "x", "train_seconds": 1, "p1": 0.5, "psp5": -0.1}]\n' >badpsppeers.json
expect_error "badpsppeers.json: entry 1: 'psp5' is not within [0, 1]" \
  "$glide" report --peers badpsppeers.json -o x.svg
printf '[{"tool": "x", "train_seconds": 1}]\n' >nop1peers.json
expect_error "nop1peers.json: entry 1: missing number 'p1'" "$glide" report --peers nop1peers.json -o x.svg
expect_error "unknown output type" "$glide" report lsh.jsonl -o report.pdf
expect_error "--levels" "$glide" report lsh.jsonl -o x.svg --levels 0.5,abc
expect_error "nothing to report" "$glide" report -o x.svg
printf '{"type":"progress","seconds":1,"samples":5}\n' >noeval.jsonl
expect_error "no P@1 or loss points" "$glide" report noeval.jsonl -o x.svg
# Without -o, the table alone (no gnuplot needed, nothing written).
GLIDE_GNUPLOT=/nonexistent/gnuplot "$glide" report lsh.jsonl >alone.txt 2>/dev/null ||
  fail "report without -o"
grep -q "^| glide lsh | " alone.txt || fail "report without -o: no table row"
GLIDE_GNUPLOT=/nonexistent/gnuplot expect_error "gnuplot not found" \
  "$glide" report lsh.jsonl -o x.svg
[ ! -e x.svg ] || fail "a failed report left an output file"

# glide train's log: evaluation records carry their own time, and a run that stops between
# evaluation points (here half an epoch, evaluated per epoch) ends with its final evaluation.
"$glide" data synth --preset tiny --points 400 --test-points 100 -o tr.gds --test-output te.gds \
  2>/dev/null
"$glide" train --train tr.gds --test te.gds -o m.glide --epochs 0.5 --batch 64 --threads 1 -q \
  --log-jsonl run.jsonl >/dev/null
[ "$(grep -c '"type":"eval"' run.jsonl)" -eq 1 ] || fail "train log: expected one eval record"
grep '"type":"eval"' run.jsonl | grep '"final":true' | grep '"samples":200' |
  grep -q '"eval_seconds":' || fail "train log: final eval record"
# 8 batches of 50, evaluated after batches 2, 4, 6 and 8: the last one is at the end already.
"$glide" train --train tr.gds --test te.gds -o m2.glide --epochs 1 --batch 50 --threads 1 -q \
  --eval-every 2 --eval-points 50 --log-jsonl run2.jsonl >/dev/null
[ "$(grep -c '"type":"eval"' run2.jsonl)" -eq 4 ] || fail "train log: expected 4 eval records"
# Every evaluation also scores PSP@k, with the training set's label counts.
[ "$(grep '"type":"eval"' run2.jsonl | grep '"psp1":' | grep -c '"psp5":')" -eq 4 ] ||
  fail "train log: eval records without PSP@k"
! grep -q '"final"' run2.jsonl || fail "train log: final record duplicates the last evaluation"
# A new run starts a fresh log (it appended, so the report saw two runs); --resume continues it.
"$glide" train --train tr.gds --test te.gds -o m2.glide --epochs 1 --batch 50 --threads 1 -q \
  --eval-every 2 --eval-points 50 --log-jsonl run2.jsonl >/dev/null
[ "$(grep -c '"type":"eval"' run2.jsonl)" -eq 4 ] || fail "a new run appended to its log"
[ "$(head -1 run2.jsonl)" = '{"resume":false,"samples":0,"type":"start"}' ] ||
  fail "train log: start record: $(head -1 run2.jsonl)"
sed -n 2p run2.jsonl | grep '"type":"setup"' | grep '"data_seconds":' | grep -q '"seconds":' ||
  fail "train log: no setup record after the start: $(sed -n 2p run2.jsonl)"
"$glide" train --train tr.gds --test te.gds -o m3.glide --resume m2.glide --epochs 2 --batch 50 \
  --threads 1 -q --eval-every 2 --eval-points 50 --log-jsonl run2.jsonl >/dev/null
[ "$(grep -c '"type":"eval"' run2.jsonl)" -eq 8 ] || fail "a resumed run did not continue its log"
grep -qF '{"resume":true,"samples":400,"type":"start"}' run2.jsonl || fail "resumed start record"
# Resuming a model that has trained the epochs asked already: an error that says so, no run.
expect_error "m3.glide: has trained 800 samples (2.00 epochs of this training set) already; --epochs 2" \
  "$glide" train --train tr.gds -o m4.glide --resume m3.glide --epochs 2 --threads 1 -q
[ ! -e m4.glide ] || fail "a resume with nothing to train wrote m4.glide"

gnuplot=${GLIDE_GNUPLOT:-gnuplot}
if ! "$gnuplot" --version >/dev/null 2>&1; then
  echo "SKIP: gnuplot is not installed (apt-get install gnuplot-nox); input checks passed"
  exit 77
fi

# The table (stdout, Markdown) with every figure worked out by hand above.
"$glide" report lsh.jsonl dense_run.jsonl --peers peers.json -o report.html --table table.md \
  --levels 0.3,0.5,0.7,0.75 >stdout.txt 2>stderr.txt || { cat stderr.txt >&2; fail "report.html"; }
cmp -s stdout.txt table.md || fail "--table differs from stdout"
row() { grep -F "| $1 |" table.md || fail "no table row for $1"; }
[ "$(row "glide lsh")" = "| glide lsh | 2.0 | 2.0 | 3.5 | - | 0.7100 | 3.5 | 0.4200 | 0.3300 | - | 857 | 321 |" ] ||
  fail "glide lsh row: $(row "glide lsh")"
# No eval_seconds in these records: nothing subtracted; no progress records after the last eval.
[ "$(row dense_run)" = "| dense_run | 20.0 | - | - | - | 0.3100 | 20.0 | 0.1900 | - | - | 51 | - |" ] ||
  fail "dense_run row: $(row dense_run)"
[ "$(row "fastText (hs dim128)")" = \
  "| fastText (hs dim128) | 16.0 | 16.0 | 49.0 | 49.0 | 0.7700 | 49.0 | 0.4100 | 0.2800 | - | 41796 | 900 |" ] ||
  fail "fastText row: $(row "fastText (hs dim128)")"
[ "$(row "PyTorch (full softmax)")" = \
  "| PyTorch (full softmax) | - | - | - | - | 0.0400 | 450.0 | - | - | - | 86 | - |" ] ||
  fail "PyTorch row: $(row "PyTorch (full softmax)")"
grep -qF "| run | s to P@1 0.3 | s to P@1 0.5 | s to P@1 0.7 | s to P@1 0.75 |" table.md ||
  fail "table header"

# A log holding several runs (glide appended before it started a fresh file per run) is reported
# by its last run, with a note; a resumed run ("start" with "resume") continues the curve before
# it: its eval at 3 s comes after 3 s of training (the progress record at 4 s less 1 s of
# evaluation), so at 6 s, and 200 samples in 6 s is 33/s.
"$glide" report twice.jsonl -o twice.svg --levels 0.5 >table.txt 2>err.txt || fail "twice.jsonl"
[ "$(grep -F "| twice |" table.txt)" = "| twice | 1.0 | 0.6000 | 1.0 | - | - | - | 9 | - |" ] ||
  fail "twice row: $(grep twice table.txt)"
grep -qF "twice.jsonl: note: the file holds 2 runs; reporting the last (from line 2)" err.txt ||
  fail "no note on the runs in twice.jsonl: $(cat err.txt)"
cat >resumed.jsonl <<'EOF'
{"type":"start","resume":false,"samples":0}
{"type":"eval","seconds":2,"samples":100,"p1":0.4,"eval_seconds":1}
{"type":"progress","seconds":4,"samples":150}
{"type":"start","resume":true,"samples":150}
{"type":"eval","seconds":3,"samples":200,"p1":0.6,"eval_seconds":1}
EOF
{ cat resumed.jsonl; echo '{"type":"start","resume":false,"samples":0}'
  echo '{"type":"eval","seconds":1,"samples":50,"p1":0.55}'; } >restarted.jsonl
"$glide" report resumed.jsonl restarted.jsonl -o resumed.svg --levels 0.5 >table.txt 2>err.txt ||
  fail "resumed.jsonl"
[ "$(grep -F "| resumed |" table.txt)" = "| resumed | 6.0 | 0.6000 | 6.0 | - | - | - | 33 | - |" ] ||
  fail "resumed row: $(grep resumed table.txt)"
[ "$(grep -F "| restarted |" table.txt)" = "| restarted | 1.0 | 0.5500 | 1.0 | - | - | - | 50 | - |" ] ||
  fail "restarted row: $(grep restarted table.txt)"
grep -qF "restarted.jsonl: note: the file holds 2 runs; reporting the last (from line 6)" err.txt ||
  fail "notes: $(cat err.txt)"
! grep -q "resumed.jsonl" err.txt || fail "a resumed run is one run: $(cat err.txt)"
# Setup before the first batch counts as training time: each segment's curve starts after it,
# and samples/s is over the batches' time alone. Here 2 s of setup, then an eval after 3 s of
# training, so at 5 s; the progress record at 4 s less 1 s of evaluation puts the stop at 5 s;
# resumed after 1 s more of setup, the next eval at 5 + 1 + 2 = 8 s; 300 samples over 3 + 2 s of
# batches is 60/s; setup 3 s in all.
cat >setup.jsonl <<'EOF'
{"type":"start","resume":false,"samples":0}
{"type":"setup","seconds":2,"data_seconds":0.5}
{"type":"eval","seconds":3,"samples":100,"p1":0.4,"eval_seconds":1}
{"type":"progress","seconds":4,"samples":150}
{"type":"start","resume":true,"samples":150}
{"type":"setup","seconds":1}
{"type":"eval","seconds":2,"samples":300,"p1":0.6}
EOF
"$glide" report setup.jsonl --levels 0.3,0.5 >table.txt 2>err.txt || fail "setup.jsonl"
[ "$(grep -F "| setup |" table.txt)" = "| setup | 5.0 | 8.0 | 0.6000 | 8.0 | - | - | 3.0 | 60 | - |" ] ||
  fail "setup row: $(grep -F "| setup |" table.txt)"
# Samples the setup trained (in logs of a glide whose run went on from its check's network) are
# not in samples/s: 2 s of setup that trained 100 samples, then 300 in all after 2 s of batches: 100/s.
printf '%s\n' '{"type":"start","resume":false,"samples":0}' \
  '{"type":"setup","seconds":2,"samples":100}' \
  '{"type":"eval","seconds":2,"samples":300,"p1":0.5}' >trial.jsonl
"$glide" report trial.jsonl --levels 0.5 >table.txt 2>err.txt || fail "trial.jsonl"
[ "$(grep -F "| trial |" table.txt)" = "| trial | 4.0 | 0.5000 | 4.0 | - | - | 2.0 | 100 | - |" ] ||
  fail "trial row: $(grep -F "| trial |" table.txt)"
printf '{"type":"setup","seconds":1,"samples":-5}\n' >badtrial.jsonl
expect_error "badtrial.jsonl:1: 'samples' is negative" "$glide" report badtrial.jsonl -o x.svg
printf '{"type":"setup","seconds":-1}\n' >badsetup.jsonl
expect_error "badsetup.jsonl:1: 'seconds' is negative" "$glide" report badsetup.jsonl -o x.svg
printf '{"type":"setup"}\n' >nosetup.jsonl
expect_error "nosetup.jsonl:1: missing number 'seconds'" "$glide" report nosetup.jsonl -o x.svg

# HTML: self-contained, the SVG inline with every series in its legend, and the table.
grep -q "<svg" report.html || fail "no inline SVG in the HTML"
! grep -q "<?xml" report.html || fail "XML prolog left inside the HTML"
for name in "glide lsh" "dense_run" "fastText (hs dim128)" "PyTorch (full softmax)"; do
  [ "$(grep -cF "$name" report.html)" -ge 3 ] || fail "'$name' not in both legends and the table"
done
grep -qF "<td>fastText (hs dim128)</td><td>16.0</td><td>16.0</td><td>49.0</td><td>49.0</td><td>0.7700</td>" \
  report.html || fail "fastText row in the HTML table"
grep -qF "<td>glide lsh</td><td>2.0</td><td>2.0</td><td>3.5</td><td>-</td><td>0.7100</td>" \
  report.html || fail "glide row in the HTML table"
# The title once, as the page's heading (the chart does not repeat it); the loss curve of the
# run's progress records under the P@1 panels.
grep -q "<h1>Time to accuracy</h1>" report.html || fail "no heading in the HTML"
! grep -q "<text>Time to accuracy</text>" report.html || fail "the HTML shows its title twice"
grep -q "training loss" report.html || fail "no loss panel in the HTML"

# SVG alone, with the series names; and a PNG.
"$glide" report lsh.jsonl dense_run.jsonl --peers peers.json -o report.svg >/dev/null 2>&1 ||
  fail "report.svg"
head -c 200 report.svg | grep -q "<svg\|<?xml" || fail "report.svg is not SVG"
grep -q "<title>Time to accuracy</title>" report.svg || fail "the SVG's title is not the chart's"
grep -q "<text>Time to accuracy</text>" report.svg || fail "the SVG alone shows no title"
! grep -q "<title>Gnuplot</title>" report.svg || fail "the SVG is titled Gnuplot"
# A run without --test: its loss is plotted.
printf '{"type":"progress","seconds":1,"samples":5,"loss":3.5}\n{"type":"progress","seconds":2,"samples":9,"loss":2.5}\n' >lossonly.jsonl
"$glide" report lossonly.jsonl -o loss.svg >/dev/null 2>err.txt || fail "report of a run without --test"
grep -q "training loss" loss.svg || fail "no loss panel for a run without --test"
! grep -q "test P@1" loss.svg || fail "a P@1 panel without P@1 points"
for name in "glide lsh" "dense_run" "fastText (hs dim128)" "PyTorch (full softmax)"; do
  grep -qF "$name" report.svg || fail "'$name' not in report.svg"
done
"$glide" report lsh.jsonl --linear -o report.png >/dev/null 2>&1 || fail "report.png"
[ "$(head -c 4 report.png | tail -c 3)" = "PNG" ] || fail "report.png is not a PNG"
"$glide" report run.jsonl run2.jsonl -o train.svg >table.txt 2>/dev/null || fail "report of glide train logs"
grep -q "^| run2 | " table.txt || fail "report of glide train logs: no run2 row"
# glide train logs its peak memory: the column is filled for glide runs too.
! grep "^| run2 | " table.txt | grep -q -- "| - |$" ||
  fail "no peak MB for a glide train log: $(grep '^| run2' table.txt)"
ls ./*.tmp* 2>/dev/null && fail "temporary files left behind"
echo "report CLI tests passed"
