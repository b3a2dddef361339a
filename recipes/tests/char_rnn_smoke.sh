#!/usr/bin/env bash
# Smoke test of char_rnn (CTest: recipe_char_rnn_smoke): a tiny model for a few dozen steps on a slice of Tiny
# Shakespeare. Checks that the loss falls, that metrics, checkpoint and tokenizer are written, that a run stopped
# and resumed writes exactly what an uninterrupted one does, that --bench prints its JSON line, and that bad input
# (missing data, unreadable checkpoint, unknown flag, --device cuda on a CPU build) fails with a clear message and
# a non-zero exit, never a crash.
# usage: char_rnn_smoke.sh PATH/TO/char_rnn WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora/tinyshakespeare.txt")
rm -rf "$work"
mkdir -p "$work"
cd "$work"
head -c 60000 "$corpus" > small.txt

tiny=(--data small.txt --layers 1 --hidden 48 --embed 16 --batch 8 --seq 32 --lr 1e-2 --warmup 5 --threads 1
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
diff <(grep '^final:' full.log | sed 's/, [0-9:]* of training//') \
     <(grep '^final:' split2.log | sed 's/, [0-9:]* of training//') || fail "resumed final loss differs"

echo "== --bench"
"$bin" --bench --steps 2 --layers 1 --hidden 32 --embed 16 --batch 4 --seq 16 --threads 1 > bench.log
grep -Eq '^\{"recipe": "char_rnn", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+, "peak_rss_mb": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error missing_data "no such file" "${tiny[@]}" --steps 5 --data does/not/exist.txt
mkdir -p garbage && cp full/tokenizer.json garbage/ && echo "not a checkpoint" > garbage/ckpt.safetensors
expect_error garbage_ckpt "garbage/ckpt.safetensors" "${tiny[@]}" --steps 5 --resume garbage
mkdir -p truncated && cp full/tokenizer.json truncated/
head -c 2000 full/ckpt.safetensors > truncated/ckpt.safetensors
expect_error truncated_ckpt "truncated/ckpt.safetensors" "${tiny[@]}" --steps 5 --resume truncated
expect_error missing_ckpt "no such file or folder" "${tiny[@]}" --steps 5 --resume nowhere
expect_error other_model "another model" "${tiny[@]}" --steps 5 --resume full --hidden 64
expect_error unknown_flag "--bogus" --bogus 3
expect_error bad_value "--cell" --cell transformer
expect_error cuda "no CUDA backend" "${tiny[@]}" --steps 5 --device cuda
"$bin" --help | grep -q -- "--cell" || fail "--help lacks --cell"
echo "char_rnn smoke test passed"
