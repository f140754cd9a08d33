# Sourced by the command-line tests: `glide` (the binary, absolute), a fresh work folder as the
# current directory (removed on exit), `fail MESSAGE`, and `expect_error WANT CMD...` (CMD fails
# with exactly one error line, which contains WANT).
# Usage: . "$(dirname "$0")/cli_test_lib.sh" GLIDE_BINARY
glide=$(realpath "$1")
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_error() {
  local want=$1; shift
  if "$@" >out.txt 2>err.txt; then fail "$* succeeded"; fi
  [ "$(wc -l <err.txt)" -eq 1 ] || { cat err.txt >&2; fail "$*: expected one error line"; }
  grep -qF -- "$want" err.txt || { cat err.txt >&2; fail "$*: error lacks '$want'"; }
}
