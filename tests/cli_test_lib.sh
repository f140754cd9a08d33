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
# served_url FILE: waits up to 20 s for `glide serve` to print its address into FILE; prints it
# (fails when none came).
served_url() {
  for _ in $(seq 200); do grep -q "listening on" "$1" 2>/dev/null && break; sleep 0.1; done
  grep -o 'http://127.0.0.1:[0-9]*' "$1"
}
# http_predict_labels URL MODEL K: each stdin line's "f:v" fields (others skipped) as one v1
# predict request for K labels; prints each answer's labels, space separated, a line a request.
http_predict_labels() {
  local url=$1 model=$2 k=$3 line
  while read -r line; do
    echo "$line" | awk -v k="$k" '{ ids = ""; vals = "";
      for (i = 1; i <= NF; ++i) { if (split($i, p, ":") != 2) continue;
        ids = ids (ids == "" ? "" : ",") p[1]; vals = vals (vals == "" ? "" : ",") p[2] }
      printf "{\"instances\": [{\"indices\": [%s], \"values\": [%s]}], \"k\": %d}\n", ids, vals, k }' \
      >body.json
    curl -sS --max-time 10 -X POST --data-binary @body.json "$url/v1/models/$model:predict" |
      grep -o '"labels":\[[^]]*\]' | sed -E 's/"labels":\[//; s/\]//; s/,/ /g' ||
      echo "(no labels)"
  done
}
