#!/usr/bin/env bash
# Smoke test of mqar (CTest: recipe_mqar_smoke): every model, tiny, for a few dozen steps on a small MQAR task.
# Checks that each run's loss falls, that results.json and every run's metrics.jsonl are written and agree with the
# printed table, that --resume goes on from a cut-short comparison to the uninterrupted result, that --bench
# prints its JSON line, and that bad input (an unknown model, a task that does not fit,
# an unknown flag) fails with a clear message and a non-zero exit, never a crash.
# usage: mqar_smoke.sh PATH/TO/mqar WORKDIR
set -euo pipefail
bin=$(realpath "$1")
source "$(dirname "$(realpath "$0")")/smoke_lib.sh"  # fail, records, loss_falls, expect_error
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"

models=$("$bin" --help | sed -nE 's/.*known models: ([a-z,]+).*/\1/p')
[ -n "$models" ] || fail "--help does not list the known models"
tiny=(--widths 16 --seq-lens 32 --kv-pairs 4 --vocab 64 --train-examples 256 --test-examples 64 --batch 32
      --lr 1e-2 --threads 1 --log-every 10)

echo "== every model ($models), 40 steps"
"$bin" "${tiny[@]}" --models "$models" --steps 40 --out out > run.log
cat run.log
[ -s out/results.json ] || fail "results.json was not written"
grep -q "test accuracy at the query positions" run.log || fail "no table printed"
for m in ${models//,/ }; do
  f=out/${m}_d16_L32_lr0.01/metrics.jsonl
  [ -s "$f" ] || fail "$f was not written"
  grep -q '"accuracy"' "$f" || fail "$f has no accuracy record"
  # Untrained: about ln 64 = 4.16; the values alone (the upper half of the vocabulary) give ln 32 = 3.47.
  echo -n "$m: "
  loss_falls "$f" 0.3
  acc=$(/usr/bin/python3 -c "import json; print([r['accuracy'] for r in json.load(open('out/results.json'))['results'] if r['model'] == '$m'][0])")
  grep -Eq "^$m +16 +$(printf '%.3f' "$acc") \(0\.01\)\$" run.log || fail "$m: the table does not show results.json's accuracy $acc"
done

echo "== a learning-rate sweep: one run per rate, the best one marked and shown"
"$bin" "${tiny[@]}" --models lstm --steps 20 --lr 1e-2,3e-2 --stop-accuracy 1 --out sweep > sweep.log
/usr/bin/python3 - <<'PY' || fail "the sweep's results.json is wrong"
import json, re
runs = json.load(open('sweep/results.json'))['results']
assert [r['lr'] for r in runs] == [0.01, 0.03], runs
best = [r for r in runs if r['best']]
assert len(best) == 1 and best[0]['accuracy'] == max(r['accuracy'] for r in runs), runs
line = [l for l in open('sweep.log') if l.startswith('lstm ')][0]
assert re.search(r'%.3f \(%g\)' % (best[0]['accuracy'], best[0]['lr']), line), line
PY
[ -s sweep/lstm_d16_L32_lr0.03/metrics.jsonl ] || fail "the second rate's metrics were not written"

echo "== --resume: a comparison cut short goes on where it stopped, and ends as an uninterrupted one"
"$bin" "${tiny[@]}" --models lstm,mingru --steps 20 --out whole > whole.log
"$bin" "${tiny[@]}" --models lstm --steps 20 --out cut > cut.log
"$bin" "${tiny[@]}" --models lstm,mingru --steps 20 --out cut --resume cut > resumed.log
grep -q "== lstm_d16_L32_lr0.01: finished before" resumed.log || fail "the resumed run trained lstm again"
grep -q "== mingru_d16_L32_lr0.01: width" resumed.log || fail "the resumed run did not train mingru"
/usr/bin/python3 - <<'PY' || fail "the resumed results.json differs from the uninterrupted one"
import json
key = lambda r: (r['model'], r['accuracy'], r['final_loss'], r['best'], r['lr'], r['steps'])
a, b = json.load(open('whole/results.json')), json.load(open('cut/results.json'))
assert a['task'] == b['task'] and [key(r) for r in a['results']] == [key(r) for r in b['results']], (a, b)
PY

echo "== --bench"
"$bin" --bench --steps 2 "${tiny[@]}" --models "${models%%,*}" --positions > bench.log  # attention with positions
grep -Eq '^\{"recipe": "mqar", "tokens_per_s": [0-9.]+, "ms_per_step": [0-9.]+, "peak_rss_mb": [0-9.]+' bench.log ||
  fail "bench line: $(cat bench.log)"

echo "== bad input"
expect_error unknown_model "unknown model 'transformer'" "${tiny[@]}" --steps 2 --models lstm,transformer
expect_error too_short "too short" "${tiny[@]}" --steps 2 --models lstm --seq-lens 12
expect_error kv_count "--kv-pairs" "${tiny[@]}" --steps 2 --models lstm --seq-lens 32,64 --kv-pairs 2,4,8
expect_error bad_width "'6x' is not a positive integer" "${tiny[@]}" --steps 2 --models lstm --widths 16,6x
expect_error bad_lr "'fast' is not a positive number" "${tiny[@]}" --steps 2 --models lstm --lr 1e-3,fast
expect_error empty_model "an empty item" "${tiny[@]}" --steps 2 --models lstm,,mingru
expect_error resume_other "comes from another configuration" "${tiny[@]}" --steps 30 --models lstm --resume cut
expect_error resume_missing "cannot read" "${tiny[@]}" --steps 2 --models lstm --resume no/such/dir
echo '{"task": 1' > broken.json
expect_error resume_broken "not a readable mqar results.json" "${tiny[@]}" --steps 2 --models lstm --resume broken.json
expect_error save "mqar has no checkpoints" "${tiny[@]}" --steps 2 --models lstm --save --out s
expect_error unknown_flag "--bogus" --bogus 3
echo "mqar smoke test passed"
