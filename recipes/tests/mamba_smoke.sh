#!/usr/bin/env bash
# Smoke test of mamba (CTest: recipe_mamba_smoke): tiny Mamba and S4D models for a few dozen steps of selective
# copying, a few steps of induction heads, and a tiny MambaLM on a slice of Tiny Shakespeare (with its sample). Checks that the loss falls, that metrics.jsonl is written with
# eval accuracy, that --bench prints its JSON line, and that bad flags fail with a clear message.
# usage: mamba_smoke.sh PATH/TO/mamba WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora/tinyshakespeare.txt")
rm -rf "$work"
mkdir -p "$work"
cd "$work"

tiny=(--layers 1 --width 16 --d-state 4 --vocab 8 --tokens 3 --seq 12 --batch 16 --lr 1e-2 --threads 1
      --eval-every 20 --log-every 20)
loss_of() { grep '"loss"' "$1" | sed -n "$2p" | sed -E 's/.*"loss":([^,}]*).*/\1/'; }

for model in mamba s4d; do
  echo "== $model"
  "$bin" "${tiny[@]}" --model "$model" --steps 60 --out "$model" > "$model.log"
  cat "$model.log"
  [ -s "$model/metrics.jsonl" ] || fail "$model/metrics.jsonl was not written"
  grep -q '"accuracy"' "$model/metrics.jsonl" || fail "$model: no eval accuracy recorded"
  grep -q "^final: $model eval accuracy" "$model.log" || fail "$model: no final line"
  first=$(loss_of "$model/metrics.jsonl" 1)
  last=$(grep '"loss"' "$model/metrics.jsonl" | tail -10 | sed -E 's/.*"loss":([^,}]*).*/\1/' |
         awk '{ s += $1 } END { print s / NR }')
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.1) }' || fail "$model: the loss did not fall ($first -> $last)"
  echo "$model: loss $first -> $last (mean of the last 10)"
done

echo "== induction"
"$bin" "${tiny[@]}" --task induction --seq 16 --steps 5 > induction.log
grep -q "^final: mamba eval accuracy" induction.log || fail "induction: no final line"

echo "== shakespeare"
head -c 20000 "$corpus" > small.txt
"$bin" --task shakespeare --data small.txt --layers 1 --width 16 --d-state 4 --seq 32 --batch 8 --lr 1e-2 \
  --threads 1 --steps 40 --eval-every 20 --log-every 20 --out lm > lm.log
grep -q -- "---- sample" lm.log || fail "shakespeare: no sample printed"
grep -q '"val_loss"' lm/metrics.jsonl || fail "shakespeare: no validation loss recorded"
first=$(loss_of lm/metrics.jsonl 1)
last=$(grep '"loss"' lm/metrics.jsonl | tail -5 | sed -E 's/.*"loss":([^,}]*).*/\1/' | awk '{ s += $1 } END { print s / NR }')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }' || fail "shakespeare: the loss did not fall ($first -> $last)"
echo "shakespeare: loss $first -> $last"

echo "== --bench"
"$bin" "${tiny[@]}" --bench --steps 2 > bench.log
grep -Eq '^\{"recipe": "mamba", "tokens_per_s": [0-9.]+' bench.log || fail "bench line: $(cat bench.log)"

echo "== bad input"
rc=0
"$bin" --model transformer > bad.out 2> bad.err || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "bad model: exit code $rc"
grep -q -- "--model" bad.err || fail "bad model: stderr lacks --model: $(cat bad.err)"
echo "mamba smoke test passed"
