#!/usr/bin/env bash
# The glide command line as a whole: `glide --version` / `glide version` print the project's
# version, and a flag value that does not parse is one error line naming the flag and the value,
# in every command (cxxopts alone says only "Argument 'abc' failed to parse").
# Usage: tests/cli_flags_test.sh GLIDE VERSION
set -euo pipefail
version=$2
. "$(cd "$(dirname "$0")" && pwd)/cli_test_lib.sh" "$1"

# Expects failure with exactly one line on stderr that contains $1.
[ "$("$glide" --version)" = "glide $version" ] || fail "--version: $("$glide" --version)"
[ "$("$glide" version)" = "glide $version" ] || fail "version"
"$glide" --help | grep -q -- "--version" || fail "--help does not mention --version"

expect_error "glide train: error: invalid value 'abc' for --epochs" \
  "$glide" train --train x.txt -o m.glide --epochs abc
expect_error "invalid value 'abc' for --lr" "$glide" train --train x.txt -o m.glide --lr=abc
expect_error "glide eval: error: invalid value '-3' for --threads" \
  "$glide" eval --model m.glide --test t.txt --threads -3
expect_error "glide predict: error: invalid value 'five' for --k" \
  "$glide" predict --model m.glide --k five
expect_error "invalid value 'x5' for -k" "$glide" predict --model m.glide -k x5
expect_error "glide serve: error: invalid value '80a' for --port" \
  "$glide" serve --model m=m.glide --port 80a
expect_error "glide data: error: invalid value 'many' for --points" \
  "$glide" data synth --preset tiny --points many -o d.gds
expect_error "glide data: error: --ceiling needs --test-points" \
  "$glide" data synth --preset tiny --ceiling -o d.gds
expect_error "glide data: error: --ceiling is for --kind xc" \
  "$glide" data synth --kind rec --test-points 10 --test-output t.gds --ceiling -o d.gds
expect_error "glide data: error: --ceiling: data of item types (--types) have no label profiles" \
  "$glide" data synth --preset facets --points 100 --test-points 10 --test-output t.gds --ceiling \
  -o d.gds
expect_error "glide data: error: --types is for --kind xc" \
  "$glide" data synth --kind rec --types 10 -o d.gds
expect_error "glide data: error: --family-size is for --kind xc" \
  "$glide" data synth --kind rec --family-size 4 -o d.gds
expect_error "glide data: error: synthetic data: family share must be in [0, 1)" \
  "$glide" data synth --preset tiny --family-size 4 --family-share 1 -o d.gds
# The planted model's figures, for the test points asked for.
"$glide" data synth --preset tiny --points 500 --test-points 100 --test-output t.gds --ceiling \
  -o d.gds 2>/dev/null | grep -Eq "^planted model on the 100 test points: P@1 [01]\.[0-9]{4}" ||
  fail "--ceiling: no planted model line"
expect_error "glide quantize: error: invalid value '1.5' for --zstd-level" \
  "$glide" quantize --model m.glide -o q.glide --zstd-level 1.5
expect_error "glide bench: error: invalid value 'zz' for --seconds" "$glide" bench train --seconds=zz
expect_error "glide bench: error: invalid value '-2' for --bench-threads" \
  "$glide" bench train --bench-threads -2
echo "CLI flag tests passed"
