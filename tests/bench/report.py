#!/usr/bin/python3
"""Render benchmark records (JSON lines from cellagent_test.bench.record()) as the Markdown table of
docs/benchmarks.md. Usage: report.py RESULTS.jsonl"""
import json
import sys


def fmt(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def main(path):
    try:
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        recs = []
    if not recs:
        print("(no benchmark results)")
        return 1
    print(f"Measured {recs[0]['time']} on {recs[0]['host']}.\n")
    print("| Benchmark | Figure | Value | Baseline (same run) | Ratio | Target | Met | Reproduce |")
    print("|---|---|---|---|---|---|---|---|")
    for r in recs:
        met = {True: "yes", False: "**no**", None: ""}[r["ok"]]
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        print(f"| {r['bench']} | {r['metric']} | {fmt(r['value'])} {r['unit']} | "
              f"{fmt(r['baseline'])} | {ratio} | {r['target'] or ''} | {met} | "
              f"`{r['command'] or ''}` |")
    notes = []  # one line per distinct (benchmark, note)
    for r in recs:
        if r.get("note") and (r["bench"], r["note"]) not in [(b, n) for b, _, n in notes]:
            notes.append((r["bench"], r["metric"], r["note"]))
    if notes:
        print("\nNotes:\n")
        for bench, metric, note in notes:
            print(f"- {bench} ({metric}): {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
