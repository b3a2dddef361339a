#!/usr/bin/env bash
# Smoke test of optim_study (CTest: recipe_optim_study_smoke): both parts at toy sizes for a few dozen steps.
# Checks that Adam's loss falls, that every optimizer and every deep-network setting leaves its metrics and its line
# in results.jsonl, and that bad input (a missing data file, --data without --part, an unknown flag, an
# unsupported --resume) fails with a clear message and a non-zero exit.
# usage: optim_study_smoke.sh PATH/TO/optim_study WORKDIR
set -euo pipefail
bin=$(realpath "$1")
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
head -c 60000 "$corpus/tinyshakespeare.txt" > small.txt

echo "== part 1"
"$bin" --part optimizers --data small.txt --steps 40 --hidden 32 --batch 8 --seq 32 --lr 1e-2 --threads 1 \
  --out run > part1.log
cat part1.log
for o in adam adamw spam adam_noise; do [ -s "run/$o/metrics.jsonl" ] || fail "run/$o/metrics.jsonl was not written"; done
[ "$(grep -c '"part": "optimizers"' run/results.jsonl)" -eq 4 ] || fail "results.jsonl lacks an optimizer"
grep -q '"val_loss"' run/adam/metrics.jsonl || fail "no validation loss for adam"
loss_falls run/adam/metrics.jsonl 0.3

echo "== part 2"
"$bin" --part deep --steps 100 --depth 3 --width 8 --seeds 2 --init both --threads 1 --out deep > part2.log
cat part2.log
[ "$(grep -c '"part": "deep"' deep/results.jsonl)" -eq 8 ] || fail "results.jsonl lacks a deep-network run"
[ -s deep/deep_zero_noise_s1/metrics.jsonl ] || fail "no metrics for deep_zero_noise_s1"
grep -q '"accuracy"' deep/deep_simple_plain_s0/metrics.jsonl || fail "no test accuracy for deep_simple_plain_s0"

echo "== bad input"
expect_error missing_data "no such file" --part optimizers --steps 5 --data does/not/exist.txt
expect_error data_without_part "say which part" --data small.txt
expect_error bad_csv "is not a number" --part deep --steps 5 --data small.txt
expect_error unknown_flag "--bogus" --bogus 3
expect_error no_resume "not supported" --resume run
echo "optim_study smoke test passed"
