#!/usr/bin/env bash
# Smoke test of the moe recipe (CTest: recipe_moe_smoke): a tiny MoE GPT and its dense baseline for a few dozen
# steps on a slice of Tiny Shakespeare. Checks that the loss falls, that the metrics carry the aux loss, z-loss,
# dropped fraction and router load, that the dense baseline has the MoE's active parameters (less the routers),
# that a run stopped and resumed writes exactly what an uninterrupted one does, that --bench prints its JSON line,
# and that bad input fails with a clear message and a non-zero exit.
# usage: moe_smoke.sh PATH/TO/moe WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
corpus=$(realpath "$(dirname "$0")/../../data/corpora/tinyshakespeare.txt")
rm -rf "$work"
mkdir -p "$work"
cd "$work"
head -c 60000 "$corpus" > small.txt

tiny=(--data small.txt --layers 2 --d-model 32 --heads 2 --seq 32 --batch 8 --experts 4 --expert-hidden 32
      --moe-every 1 --lr 3e-3 --warmup 5 --threads 1 --eval-every 30 --log-every 20 --sample 40)
field() { grep "\"$2\"" "$1" | "$3" -1 | sed -E "s/.*\"$2\":([^,}]*).*/\1/"; }

echo "== MoE run"
"$bin" "${tiny[@]}" --steps 60 --out full --save > full.log
cat full.log
for f in metrics.jsonl ckpt.safetensors; do [ -s "full/$f" ] || fail "full/$f was not written"; done
for k in aux_loss z_loss dropped max_load load_0 load_3; do
  grep -q "\"$k\"" full/metrics.jsonl || fail "metrics lack $k"
done
grep -q -- "---- sample" full.log || fail "no sample printed"
grep -q "^router 1: tokens per expert" full.log || fail "no router summary"
first=$(field full/metrics.jsonl loss head) last=$(field full/metrics.jsonl loss tail)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.2) }' || fail "the loss did not fall ($first -> $last)"
echo "loss $first -> $last, aux loss $(field full/metrics.jsonl aux_loss tail)"

echo "== dense baseline at equal active parameters"
"$bin" "${tiny[@]}" --steps 20 --dense --out dense > dense.log
cat dense.log
grep -q '"aux_loss"' dense/metrics.jsonl && fail "the dense run logs router metrics"
active=$(sed -nE 's/.* ([0-9]+) active per token.*/\1/p' full.log)
dense=$(sed -nE 's/.* ([0-9]+) parameters, .*/\1/p' dense.log)
# The MoE's active parameters are the dense model's plus the routers: 2 layers x 4 experts x 32.
[ "$active" -eq $((dense + 2 * 4 * 32)) ] || fail "active parameters $active vs dense $dense"

echo "== stopped at 30, resumed to 60"
"$bin" "${tiny[@]}" --steps 60 --stop-after 30 --out split --save > split1.log
grep -q "stopped at step 30 of 60" split1.log || fail "the first half did not stop at step 30"
"$bin" "${tiny[@]}" --steps 60 --resume split --out split --save > split2.log
diff <(records full/metrics.jsonl) <(records split/metrics.jsonl) || fail "resumed metrics differ"

echo "== dense-to-sparse gate and top-2"
"$bin" "${tiny[@]}" --steps 20 --top-k 2 --dts-steps 10 --sample 0 --out dts > dts.log
grep -q '"gate_temperature"' dts/metrics.jsonl || fail "no gate temperature logged"

echo "== --bench"
"$bin" --bench --steps 2 --layers 1 --d-model 32 --heads 2 --seq 16 --batch 4 --experts 4 --expert-hidden 32 \
  --moe-every 1 --threads 1 > bench.log
grep -Eq '^\{"recipe": "moe", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+, "peak_rss_mb": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error missing_data "no such file" "${tiny[@]}" --steps 5 --data does/not/exist.txt
expect_error top_k "--top-k" "${tiny[@]}" --steps 5 --top-k 5
expect_error heads "--heads" "${tiny[@]}" --steps 5 --d-model 30 --heads 4
expect_error other_model "another model" "${tiny[@]}" --steps 5 --resume full --experts 8
expect_error unknown_flag "--bogus" --bogus 3
"$bin" --help | grep -q -- "--capacity-factor" || fail "--help lacks --capacity-factor"
echo "moe smoke test passed"
