#!/usr/bin/env bash
# The glide command line as a whole: `glide --version` / `glide version` print the project's
# version.
# Usage: tests/cli_flags_test.sh GLIDE VERSION
set -euo pipefail
glide=$1 version=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Expects failure with exactly one line on stderr that contains $1.
expect_error() {
  local want=$1; shift
  if "$@" >out.txt 2>err.txt; then fail "$* succeeded"; fi
  [ "$(wc -l <err.txt)" -eq 1 ] || { cat err.txt >&2; fail "$*: expected one error line"; }
  grep -qF -- "$want" err.txt || { cat err.txt >&2; fail "$*: error lacks '$want'"; }
}

[ "$("$glide" --version)" = "glide $version" ] || fail "--version: $("$glide" --version)"
[ "$("$glide" version)" = "glide $version" ] || fail "version"
"$glide" --help | grep -q -- "--version" || fail "--help does not mention --version"

echo "CLI flag tests passed"
