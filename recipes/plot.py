#!/usr/bin/python3
"""Learning curves from recipe metrics files (metrics.jsonl, one JSON object per line) as a PNG.

    /usr/bin/python3 recipes/plot.py out/lstm/metrics.jsonl out/gru/metrics.jsonl -o docs/img/char_rnn.png

One line per file (labelled by its folder, or --labels), in up to two panels: the training loss (smoothed over
--smooth records) and the validation metric (val_loss, else accuracy). --x wall_s plots against wall-clock
seconds instead of steps. Needs matplotlib (Debian: apt-get install python3-matplotlib).

A results table instead (mqar's results.json: {"results": [{"model", "width", "seq_len", "accuracy", ...}]}) gives
grouped bars, one panel per sequence length, one bar per model and width (the best of a cell's runs):

    /usr/bin/python3 recipes/plot.py --results out/mqar/results.json -o docs/img/mqar.png
"""
import argparse
import json
import os
import sys


def read_records(path):
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"plot.py: {path}:{n}: skipped a malformed line ({e})", file=sys.stderr)
    return records


def series(records, x, y):
    pts = [(r[x], r[y]) for r in records if x in r and y in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def max_x(records, x):
    return max((r[x] for r in records if x in r), default=0)


def smooth(values, n):
    """Trailing mean over n points: the curve keeps its length and its right end is the recent average."""
    if n <= 1:
        return values
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= n:
            acc -= values[i - n]
        out.append(acc / min(i + 1, n))
    return out


def plot_results(path, output, title, plt):
    """Grouped bars of accuracy by model (groups) and width (bars), one panel per sequence length."""
    try:
        with open(path) as f:
            results = json.load(f)["results"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"plot.py: cannot read a results table from {path}: {e}")
    if not results:
        sys.exit(f"plot.py: {path} holds no results")
    models = list(dict.fromkeys(r["model"] for r in results))
    widths = sorted({r["width"] for r in results})
    lengths = sorted({r["seq_len"] for r in results})
    fig, axes = plt.subplots(1, len(lengths), figsize=(max(4.5, 1.2 * len(models) + 1.5) * len(lengths), 4.2),
                             squeeze=False, sharey=True)
    bar = 0.8 / len(widths)
    for ax, length in zip(axes[0], lengths):
        kv = next((r.get("kv_pairs") for r in results if r["seq_len"] == length), None)
        for j, width in enumerate(widths):
            acc = {}  # a cell's best run: mqar trains every cell at each learning rate of its sweep
            for r in results:
                if r["seq_len"] == length and r["width"] == width:
                    acc[r["model"]] = max(acc.get(r["model"], 0.0), r["accuracy"])
            xs = [i + (j - (len(widths) - 1) / 2) * bar for i, m in enumerate(models) if m in acc]
            ys = [acc[m] for m in models if m in acc]
            ax.bar(xs, ys, bar, label=f"width {width}")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"length {length}" + (f", {kv} key-value pairs" if kv else ""))
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    print(f"plot.py: wrote {output}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="metrics.jsonl files")
    ap.add_argument("--results", help="a results table (results.json) to draw as grouped bars instead of curves")
    ap.add_argument("-o", "--output", default="curves.png", help="PNG to write (default: curves.png)")
    ap.add_argument("--labels", help="comma-separated names, one per file (default: each file's folder)")
    ap.add_argument("--x", default="step", choices=["step", "wall_s"], help="x axis (default: step)")
    ap.add_argument("--smooth", type=int, default=5, help="records in the training-loss moving average")
    ap.add_argument("--title", default="", help="figure title")
    ap.add_argument("--target", type=float, help="draw a horizontal line at this validation value")
    args = ap.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot.py: matplotlib is missing (Debian: apt-get install python3-matplotlib)")

    if args.results:
        if args.files:
            sys.exit("plot.py: give either metrics files or --results, not both")
        return plot_results(args.results, args.output, args.title, plt)
    if not args.files:
        sys.exit("plot.py: no metrics files given")

    labels = args.labels.split(",") if args.labels else [
        os.path.basename(os.path.dirname(os.path.abspath(f))) or f for f in args.files]
    if len(labels) != len(args.files):
        sys.exit(f"plot.py: {len(labels)} labels for {len(args.files)} files")
    runs = []
    for f, label in zip(args.files, labels):
        try:
            runs.append((label, read_records(f)))
        except OSError as e:
            sys.exit(f"plot.py: cannot read {f}: {e.strerror}")

    val_key = next((k for k in ("val_loss", "accuracy", "val_accuracy")
                    if any(k in r for _, recs in runs for r in recs)), None)
    panels = [("loss", "training loss")] + ([(val_key, val_key.replace("_", " "))] if val_key else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (key, name) in zip(axes[0], panels):
        for label, recs in runs:
            xs, ys = series(recs, args.x, key)
            if not xs:
                continue
            if key == "loss":
                ys = smooth(ys, args.smooth)
            ax.plot(xs, ys, label=label, marker="o" if key != "loss" and len(xs) < 40 else None, markersize=3)
        # The first records (an untrained model's loss) would squash the part of the curve worth reading.
        tails = [y for _, recs in runs for x, y in zip(*series(recs, args.x, key)) if x > 0.1 * max_x(recs, args.x)]
        if tails:
            lo, hi = min(tails), max(tails)
            ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.25 * (hi - lo + 1e-9))
        if key != "loss" and args.target is not None:
            ax.axhline(args.target, color="gray", linestyle="--", linewidth=1, label=f"target {args.target:g}")
        ax.set_xlabel("wall-clock seconds" if args.x == "wall_s" else "step")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"plot.py: wrote {args.output}")


if __name__ == "__main__":
    main()
