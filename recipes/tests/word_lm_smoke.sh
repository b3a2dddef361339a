#!/usr/bin/env bash
# Smoke test of word_lm (CTest: recipe_word_lm_smoke): a tiny word LSTM for two short epochs on a slice of
# WikiText-2. Checks that the loss falls, that the per-epoch validation and test perplexities, the checkpoint and
# the tokenizer are written, that a run stopped and resumed writes what an uninterrupted one does, that --bench
# prints its JSON line, and that bad input (a missing folder or split, an unknown flag) fails with a clear message.
# usage: word_lm_smoke.sh PATH/TO/word_lm WORKDIR
set -euo pipefail
bin=$(realpath "$1")
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora/wikitext-2")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"
rm -rf "$work"
mkdir -p "$work/small"
cd "$work"
head -c 40000 "$corpus/train.txt" > small/train.txt
head -c 8000 "$corpus/valid.txt" > small/valid.txt
head -c 8000 "$corpus/test.txt" > small/test.txt

tiny=(--data small --hidden 32 --batch 8 --seq 10 --epochs 2 --decay-after 1 --threads 1 --log-every 20)

echo "== uninterrupted run"
"$bin" "${tiny[@]}" --out full --save > full.log
cat full.log
for f in metrics.jsonl ckpt.safetensors tokenizer.json; do [ -s "full/$f" ] || fail "full/$f was not written"; done
[ "$(grep -c '"test_ppl"' full/metrics.jsonl)" -eq 2 ] || fail "expected a test perplexity after each of 2 epochs"
grep -q '"val_ppl"' full/metrics.jsonl || fail "no validation perplexity"
grep -Eq '^final: step [0-9]+, test perplexity [0-9.]+' full.log || fail "no final line"
loss_falls full/metrics.jsonl 0.5

echo "== stopped at 40, resumed"
"$bin" "${tiny[@]}" --stop-after 40 --out split --save > split1.log
grep -q "stopped at step 40 of" split1.log || fail "the first part did not stop at step 40"
"$bin" "${tiny[@]}" --resume split --out split --save > split2.log
diff <(records full/metrics.jsonl) <(records split/metrics.jsonl) || fail "resumed metrics differ"
diff <(grep '^final:' full.log | sed 's/, [0-9:]* of training//') \
     <(grep '^final:' split2.log | sed 's/, [0-9:]* of training//') || fail "resumed final line differs"

echo "== --bench"
"$bin" --bench --steps 2 --hidden 16 --batch 4 --seq 5 --threads 1 > bench.log
grep -Eq '^\{"recipe": "word_lm", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error missing_folder "no such folder" "${tiny[@]}" --data does/not/exist
mkdir -p notest && cp small/train.txt small/valid.txt notest/
expect_error missing_split "notest/test.txt" "${tiny[@]}" --data notest
expect_error unknown_flag "--bogus" --bogus 3
expect_error missing_ckpt "no such file or folder" "${tiny[@]}" --resume nowhere
"$bin" --help | grep -q -- "--decay-after" || fail "--help lacks --decay-after"
echo "word_lm smoke test passed"
