#!/usr/bin/env bash
# Smoke test of s4 (CTest: recipe_s4_smoke): a tiny S4D classifier for a few dozen steps on sequential digits and
# a few steps of short ListOps. Checks that the loss falls, that metrics.jsonl is written with accuracy, that
# --bench prints its JSON line, and that a missing data file and a bad flag fail with a clear message.
# usage: s4_smoke.sh PATH/TO/s4 WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"

tiny=(--layers 1 --width 32 --d-state 8 --batch 32 --lr 3e-2 --threads 1 --eval-every 30 --log-every 30)
mean_loss() { grep '"loss"' "$1" | sed -n "$2" | sed -E 's/.*"loss":([^,}]*).*/\1/' | awk '{ s += $1 } END { print s / NR }'; }

echo "== digits"
"$bin" "${tiny[@]}" --steps 90 --out digits > digits.log
cat digits.log
[ -s digits/metrics.jsonl ] || fail "digits/metrics.jsonl was not written"
grep -q '"accuracy"' digits/metrics.jsonl || fail "no accuracy recorded"
grep -q "^final: digits test accuracy" digits.log || fail "no final line"
first=$(mean_loss digits/metrics.jsonl 1,5p)
last=$(mean_loss digits/metrics.jsonl 81,90p)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.2) }' || fail "the loss did not fall ($first -> $last)"
echo "digits: loss $first -> $last (means of the first and last steps)"

echo "== listops"
"$bin" "${tiny[@]}" --task listops --min-len 8 --max-len 24 --steps 5 --bidirectional > listops.log
grep -q "^final: listops test accuracy" listops.log || fail "listops: no final line"

echo "== --bench"
"$bin" "${tiny[@]}" --bench --steps 2 > bench.log
grep -Eq '^\{"recipe": "s4", "tokens_per_s": [0-9.]+' bench.log || fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error missing_data "does/not/exist.csv" "${tiny[@]}" --steps 5 --data does/not/exist.csv
expect_error bad_task "--task" --task mnist
echo "s4 smoke test passed"
