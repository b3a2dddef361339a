#!/usr/bin/python3
"""Runs tapegrad's tg_bench and a peer alternately on the same workloads and prints medians and ratios.

Usage: compare.py [--tg build/release/tests/bench/tg_bench] [--peer ../shared/peer/torch_peer.py]
                  [--reps 5] [--threads 2] [--steps N] WORKLOAD...
OpenBLAS's environment (OPENBLAS_CORETYPE, ...) is the same for every side.
Both sides run with --best (each in its fastest thread arrangement). Peers: the PyTorch script and, for sgemm-N, numpy's OpenBLAS
sgemm measured in-process. Prints one JSON line per run, then one summary JSON line per workload.
The machines are shared and noisy: the runs alternate so that both sides see the same load.
"""
import argparse, json, os, statistics, subprocess, sys, time

def run_json(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])

NUMPY_SGEMM = r"""
import json, sys, time, numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
a = np.random.randn(n, n).astype(np.float32); b = np.random.randn(n, n).astype(np.float32)
for _ in range(3): a @ b
t = time.perf_counter()
for _ in range(reps): a @ b
dt = (time.perf_counter() - t) / reps
print(json.dumps({"ms_per_step": dt * 1e3, "gflops": 2 * n ** 3 / dt / 1e9, "peer": "numpy-openblas"}))
"""

def key(r):
    for k in ("gflops", "tokens_per_s"):
        if k in r: return k, r[k]
    return "ms_per_step", r["ms_per_step"]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--tg", default="build/release/tests/bench/tg_bench")
    ap.add_argument("--peer", default=os.path.join(os.path.dirname(__file__), "../../../shared/peer/torch_peer.py"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--native-openblas", action="store_true",
                    help="unset OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for every side (all use the same OpenBLAS)")
    a = ap.parse_args()
    env = dict(os.environ)
    if a.native_openblas:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"): env.pop(k, None)
    steps = ["--steps", str(a.steps)] if a.steps else []
    for w in a.workloads:
        res = {"tapegrad": [], "torch": [], "numpy": []}
        for _ in range(a.reps):
            r = run_json([a.tg, w, "--threads", str(a.threads), "--best", *steps], env); res["tapegrad"].append(r); print(json.dumps(r))
            if os.path.exists(a.peer):
                r = run_json(["/usr/bin/python3", a.peer, w, "--threads", str(a.threads), "--best", *steps], env)
                res["torch"].append(r); print(json.dumps(r))
            if w.startswith("sgemm-"):
                r = run_json(["/usr/bin/python3", "-c", NUMPY_SGEMM, w[6:], str(a.steps or 20)],
                             {**env, "OPENBLAS_NUM_THREADS": str(a.threads)})
                res["numpy"].append(r); print(json.dumps(r))
        summary = {"workload": w, "reps": a.reps}
        k, _ = key(res["tapegrad"][0])
        med = {name: statistics.median(key(r)[1] for r in rs) for name, rs in res.items() if rs}
        for name, m in med.items(): summary[f"{name}_median_{k}"] = round(m, 4)
        for name in ("torch", "numpy"):
            if name in med:
                ratio = med["tapegrad"] / med[name] if k != "ms_per_step" else med[name] / med["tapegrad"]
                summary[f"ratio_vs_{name}"] = round(ratio, 3)
        if "us_per_op" in res["tapegrad"][0]:
            summary["tapegrad_median_us_per_op"] = round(statistics.median(r["us_per_op"] for r in res["tapegrad"]), 4)
            if res["torch"]: summary["torch_median_us_per_op"] = round(statistics.median(r["us_per_op"] for r in res["torch"]), 4)
        print(json.dumps(summary))

if __name__ == "__main__":
    main()
