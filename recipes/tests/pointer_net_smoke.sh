#!/usr/bin/env bash
# Smoke test of pointer_net (CTest: recipe_pointer_net_smoke): a tiny pointer network for a few dozen steps on
# sorting 3..5 numbers. Checks that the loss falls, that metrics (accuracy by length) and the checkpoint are
# written, that the table covers the longer held-out lengths, that a stopped and resumed run writes what an
# uninterrupted one does, and that bad input fails with a clear message.
# usage: pointer_net_smoke.sh PATH/TO/pointer_net WORKDIR
set -euo pipefail
bin=$(realpath "$1")
work=$2
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"
rm -rf "$work"
mkdir -p "$work"
cd "$work"

tiny=(--min-length 3 --max-length 5 --eval-max-length 6 --hidden 32 --batch 32 --lr 1e-2 --threads 1
      --eval-every 20 --eval-size 32 --beam-eval 4 --beam 2 --log-every 10)

echo "== uninterrupted run"
"$bin" "${tiny[@]}" --steps 60 --out full --save > full.log
cat full.log
for f in metrics.jsonl ckpt.safetensors; do [ -s "full/$f" ] || fail "full/$f was not written"; done
for n in 3 4 5 6; do grep -q "\"exact_n$n\"" full/metrics.jsonl || fail "no accuracy for length $n"; done
grep -Eq '^ +6\*\|' full.log || fail "the table lacks the held-out length 6"
loss_falls full/metrics.jsonl 0.2

echo "== stopped at 30, resumed to 60"
"$bin" "${tiny[@]}" --steps 60 --stop-after 30 --out split --save > split1.log
grep -q "stopped at step 30 of 60" split1.log || fail "the first half did not stop at step 30"
"$bin" "${tiny[@]}" --steps 60 --resume split --out split --save > split2.log
diff <(records full/metrics.jsonl) <(records split/metrics.jsonl) || fail "resumed metrics differ"

echo "== --bench"
"$bin" "${tiny[@]}" --bench --steps 2 > bench.log
grep -Eq '^\{"recipe": "pointer_net", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error unknown_flag "--bogus" --bogus 3
expect_error bad_lengths "need --min-length <= --max-length" "${tiny[@]}" --steps 5 --max-length 7
expect_error data_flag "makes its own data" "${tiny[@]}" --steps 5 --data x.txt
echo "pointer_net smoke test passed"
