#!/usr/bin/env bash
# Smoke test of gpt (CTest: recipe_gpt_smoke): a tiny GPT for a few dozen steps on a slice of Tiny Shakespeare, in
# the default and the LLaMA-style (--pos rope --norm rms --mlp swiglu --kv-heads) variants. Checks that the loss
# falls, that metrics, checkpoint and tokenizer are written, that a run stopped and resumed writes exactly what an
# uninterrupted one does, that a sample is printed, that --bench prints its JSON line, and that bad input fails with
# a clear message and a non-zero exit.
# usage: gpt_smoke.sh PATH/TO/gpt WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora/tinyshakespeare.txt")
rm -rf "$work"
mkdir -p "$work"
cd "$work"
head -c 60000 "$corpus" > small.txt

tiny=(--data small.txt --layers 2 --heads 2 --width 32 --context 32 --batch 8 --lr 3e-3 --warmup 5 --threads 1
      --eval-every 20 --log-every 10 --sample 40)

echo "== uninterrupted run"
"$bin" "${tiny[@]}" --steps 60 --out full --save > full.log
cat full.log
for f in metrics.jsonl ckpt.safetensors tokenizer.json; do [ -s "full/$f" ] || fail "full/$f was not written"; done
grep -q -- "---- sample" full.log || fail "no sample printed"
first=$(grep '"loss"' full/metrics.jsonl | head -1 | sed -E 's/.*"loss":([^,}]*).*/\1/')
last=$(grep '"loss"' full/metrics.jsonl | tail -1 | sed -E 's/.*"loss":([^,}]*).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.3) }' || fail "the loss did not fall ($first -> $last)"
echo "loss $first -> $last"

echo "== stopped at 30, resumed to 60"
"$bin" "${tiny[@]}" --steps 60 --stop-after 30 --out split --save > split1.log
grep -q "stopped at step 30 of 60" split1.log || fail "the first half did not stop at step 30"
"$bin" "${tiny[@]}" --steps 60 --resume split --out split --save > split2.log
diff <(records full/metrics.jsonl) <(records split/metrics.jsonl) || fail "resumed metrics differ"

echo "== LLaMA-style variant"
"$bin" "${tiny[@]}" --steps 20 --pos rope --norm rms --mlp swiglu --kv-heads 1 --top-k 10 > llama.log
grep -q "rope positions" llama.log || fail "the variant did not run: $(head -3 llama.log)"
grep -q -- "---- sample" llama.log || fail "no sample printed by the variant"

echo "== --bench"
"$bin" --bench --steps 2 --layers 1 --heads 2 --width 32 --context 16 --batch 4 --threads 1 > bench.log
grep -Eq '^\{"recipe": "gpt", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+, "peak_rss_mb": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error missing_data "no such file" "${tiny[@]}" --steps 5 --data does/not/exist.txt
expect_error other_model "another model" "${tiny[@]}" --steps 5 --resume full --width 64
expect_error bad_heads "multiple of --heads" "${tiny[@]}" --steps 5 --heads 3
expect_error bad_pos "--pos" --pos alibi
"$bin" --help | grep -q -- "--mlp" || fail "--help lacks --mlp"
echo "gpt smoke test passed"
