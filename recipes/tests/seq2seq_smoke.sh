#!/usr/bin/env bash
# Smoke test of seq2seq (CTest: recipe_seq2seq_smoke): a tiny encoder-decoder for a few dozen steps on digit
# reversal. Checks that the loss falls, that metrics and the checkpoint are written with both accuracies, that a
# run stopped and resumed writes what an uninterrupted one does, and that bad input fails with a clear message.
# usage: seq2seq_smoke.sh PATH/TO/seq2seq WORKDIR
set -euo pipefail
bin=$(realpath "$1")
work=$2
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

tiny=(--max-digits 4 --hidden 32 --embed 16 --batch 32 --lr 1e-2 --threads 1 --eval-every 20 --eval-size 64
      --beam-eval 8 --beam 3 --log-every 10)

echo "== uninterrupted run"
"$bin" "${tiny[@]}" --steps 60 --out full --save > full.log
cat full.log
for f in metrics.jsonl ckpt.safetensors; do [ -s "full/$f" ] || fail "full/$f was not written"; done
grep -q '"greedy_accuracy"' full/metrics.jsonl || fail "no greedy accuracy in the metrics"
grep -q '"beam_accuracy"' full/metrics.jsonl || fail "no beam accuracy in the metrics"
grep -q '^final: exact match greedy' full.log || fail "no final line"
loss_falls full/metrics.jsonl 0.5

echo "== stopped at 30, resumed to 60"
"$bin" "${tiny[@]}" --steps 60 --stop-after 30 --out split --save > split1.log
grep -q "stopped at step 30 of 60" split1.log || fail "the first half did not stop at step 30"
"$bin" "${tiny[@]}" --steps 60 --resume split --out split --save > split2.log
diff <(records full/metrics.jsonl) <(records split/metrics.jsonl) || fail "resumed metrics differ"
diff <(grep '^final:' full.log) <(grep '^final:' split2.log) || fail "resumed final line differs"

echo "== --bench"
"$bin" "${tiny[@]}" --bench --steps 2 > bench.log
grep -Eq '^\{"recipe": "seq2seq", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error unknown_flag "--bogus" --bogus 3
expect_error bad_task "--task" --task multiply
expect_error bad_digits "--min-digits 5 is above --max-digits 4" "${tiny[@]}" --steps 5 --min-digits 5
expect_error missing_ckpt "no such file or folder" "${tiny[@]}" --steps 5 --resume nowhere
"$bin" --help | grep -q -- "--attention" || fail "--help lacks --attention"
echo "seq2seq smoke test passed"
