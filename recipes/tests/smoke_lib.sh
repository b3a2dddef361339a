# Helpers shared by the recipes' smoke tests (sourced; they expect $bin to be the recipe under test).

fail() { echo "FAIL: $*" >&2; exit 1; }

# Training records without the fields that depend on the clock.
records() { sed -E 's/,"tokens_per_s":[^,}]*//; s/,"wall_s":[^,}]*//' "$1"; }

# loss_falls METRICS MARGIN: the last logged training loss is at least MARGIN below the first.
loss_falls() {
  local first last
  first=$(grep '"loss"' "$1" | head -1 | sed -E 's/.*"loss":([^,}]*).*/\1/')
  last=$(grep '"loss"' "$1" | tail -1 | sed -E 's/.*"loss":([^,}]*).*/\1/')
  awk -v a="$first" -v b="$last" -v m="$2" 'BEGIN { exit !(b < a - m) }' || fail "the loss did not fall ($first -> $last)"
  echo "loss $first -> $last"
}

# expect_error NAME PATTERN ARGS...: a non-zero exit below 128 (not a signal) and PATTERN in stderr.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  local rc=0
  "$bin" "$@" > "$name.out" 2> "$name.err" || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "$name: exit code $rc"
  grep -q -- "$pattern" "$name.err" || fail "$name: stderr lacks '$pattern': $(cat "$name.err")"
  echo "$name: exit $rc: $(head -1 "$name.err")"
}
