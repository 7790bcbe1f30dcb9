#!/usr/bin/env python3
"""Turns the results of bench/run.sh into Markdown tables.

  report.py BENCH_DIR      reads BENCH_DIR/results.tsv, *.info.json, machine.txt

Medians are over the timed runs (run 0, the warm-up, is left out). Each column
is its own median: wall, wall + flush, CPU (user + sys of the same run), peak
RSS, and bytes written (GNU time "File system outputs" x 512).
"""

import csv
import json
import os
import statistics
import sys

MIB = 1 << 20
TOOLS = ["poolsync", "rsync", "cp"]
PEER_NAMES = {"poolsync": "poolsync", "rsync": "rsync -a --delete", "cp": "cp -a"}
SCENARIOS = [
    ("initial", "initial sync (empty destination)"),
    ("change1pct", "after a 1% change"),
    ("nochange", "nothing changed"),
]
DATASETS = ["small", "large", "tiny"]


def load(bench_dir):
    rows = []
    with open(os.path.join(bench_dir, "results.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["run"] == "0":
                continue
            wall = float(row["wall_s"])
            flush = float(row["flush_s"])
            rows.append(
                {
                    "dataset": row["dataset"],
                    "scenario": row["scenario"],
                    "tool": row["tool"],
                    "ok": not row["note"].startswith("exit"),
                    "wall": wall,
                    "durable": wall + flush,
                    "cpu": float(row["user_s"]) + float(row["sys_s"]),
                    "rss": int(row["maxrss_kb"]) * 1024,
                    "written": int(row["fs_out_blocks"]) * 512,
                    "background": float(row.get("background_cores") or 0),
                }
            )
    return rows


def med(rows, key):
    return statistics.median(r[key] for r in rows) if rows else None


def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def fmt_mib(x):
    if x is None:
        return "n/a"
    return f"{x / MIB:.1f}" if x < 100 * MIB else f"{x / MIB:.0f}"


def ratio(a, b):
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "n/a (peer 0)" if a else "="
    return f"{a / b:.2f}×"


def dataset_title(info):
    return (
        f"{info['items']:,} items, {info['bytes'] / MIB:,.0f} MiB "
        f"({info['min_size']:,}–{info['max_size']:,} bytes per item, {info['folders']:,} folders)"
    )


def report_dataset(name, info, rows, out):
    mine = [r for r in rows if r["dataset"] == name]
    if not mine:
        return
    runs = max(
        (len([r for r in mine if r["scenario"] == s and r["tool"] == "poolsync"]) for s, _ in SCENARIOS),
        default=0,
    )
    out.append(f"### Dataset `{name}`: {dataset_title(info)}\n")
    out.append(
        f"1% change set: {info['modified']:,} items modified in place, {info['added']:,} added, "
        f"{info['deleted']:,} deleted. An item-granular sync must copy "
        f"{info['changed_item_bytes'] / MIB:.1f} MiB (whole modified items plus new items; "
        f"{info['changed_item_page_bytes'] / MIB:.1f} MiB in whole 4 KiB pages); "
        f"the bytes that differ are {info['changed_region_bytes'] / MIB:.1f} MiB.\n"
    )
    out.append(
        f"Medians of {runs} runs (warm cache). Wall time is min–max in brackets. "
        "Background: the CPU the rest of the machine used during the run (median, in cores of 2).\n"
    )
    out.append(
        "| scenario | tool | wall (s) | wall + flush (s) | CPU user+sys (s) | peak RSS (MiB) | written (MiB) "
        "| background (cores) |"
    )
    out.append("|---|---|--:|--:|--:|--:|--:|--:|")
    medians = {}
    for sc, label in SCENARIOS:
        for tool in TOOLS:
            sel = [r for r in mine if r["scenario"] == sc and r["tool"] == tool]
            if not sel:
                if sc != "initial" and tool == "cp":
                    out.append(f"| {label} | {PEER_NAMES[tool]} | n/a | n/a | n/a | n/a | n/a | |")
                continue
            m = {k: med(sel, k) for k in ("wall", "durable", "cpu", "rss", "written", "background")}
            m["best"] = min(r["wall"] for r in sel)
            medians[(sc, tool)] = m
            walls = [r["wall"] for r in sel]
            spread = f" ({fmt_s(min(walls))}–{fmt_s(max(walls))})" if len(walls) > 1 else ""
            failed = sum(not r["ok"] for r in sel)
            flag = f" ⚠ {failed} failed" if failed else ""
            out.append(
                f"| {label} | {PEER_NAMES[tool]} | {fmt_s(m['wall'])}{spread}{flag} | {fmt_s(m['durable'])} | "
                f"{fmt_s(m['cpu'])} | {fmt_mib(m['rss'])} | {fmt_mib(m['written'])} | {m['background']:.2f} |"
            )
    out.append("")
    out.append("Ratios poolsync / peer (below 1 means poolsync is faster or smaller):\n")
    out.append("| scenario | peer | wall | wall (best run) | wall + flush | CPU | peak RSS | written |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|")
    for sc, label in SCENARIOS:
        p = medians.get((sc, "poolsync"))
        for peer in ("rsync", "cp"):
            q = medians.get((sc, peer))
            if p is None or q is None:
                continue
            out.append(
                f"| {label} | {PEER_NAMES[peer]} | "
                + " | ".join(ratio(p[k], q[k]) for k in ("wall", "best", "durable", "cpu", "rss", "written"))
                + " |"
            )
    out.append("")

    # The targets.
    out.append("Against the targets:\n")
    out.append("| target | measured | met? |")
    out.append("|---|---|---|")

    def row(target, measured, ok):
        out.append(f"| {target} | {measured} | {'yes' if ok else '**no**'} |")

    p, c = medians.get(("initial", "poolsync")), medians.get(("initial", "cp"))
    if p and c:
        row(
            "initial sync no slower than `cp -a` (wall)",
            f"{fmt_s(p['wall'])} s vs {fmt_s(c['wall'])} s = {ratio(p['wall'], c['wall'])}"
            f" (with flush: {ratio(p['durable'], c['durable'])})",
            p["wall"] <= c["wall"],
        )
    for sc, label in SCENARIOS[1:]:
        p, r = medians.get((sc, "poolsync")), medians.get((sc, "rsync"))
        if p and r:
            speedup = r["wall"] / p["wall"] if p["wall"] else float("inf")
            row(
                f"{label}: at least 3× faster than rsync (wall)",
                f"{fmt_s(p['wall'])} s vs {fmt_s(r['wall'])} s: {speedup:.2f}× faster"
                if speedup >= 1
                else f"{fmt_s(p['wall'])} s vs {fmt_s(r['wall'])} s: {1 / speedup:.2f}× slower",
                speedup >= 3,
            )
    peak = max((m["rss"] for (sc, t), m in medians.items() if t == "poolsync"), default=None)
    if peak is not None and info["items"] >= 100_000:
        row("peak memory under 100 MiB at 100,000 items", f"{fmt_mib(peak)} MiB (highest scenario median)", peak < 100 * MIB)
    elif peak is not None:
        out.append(f"| peak memory (target is for 100,000 items) | {fmt_mib(peak)} MiB | — |")
    p = medians.get(("change1pct", "poolsync"))
    if p:
        want = info["changed_item_bytes"]
        pages = info["changed_item_page_bytes"]
        q = medians.get(("change1pct", "rsync"))
        row(
            "bytes written equal to the changed bytes (1% change)",
            f"{fmt_mib(p['written'])} MiB written for {fmt_mib(want)} MiB of changed items "
            f"({fmt_mib(pages)} MiB in pages) = {p['written'] / want:.2f}× ({p['written'] / pages:.2f}× the pages)"
            + (f"; rsync: {q['written'] / want:.2f}×" if q else ""),
            abs(p["written"] - want) <= 0.05 * want,
        )
    out.append("")


def main(bench_dir):
    rows = load(bench_dir)
    out = ["## Results\n"]
    machine = os.path.join(bench_dir, "machine.txt")
    if os.path.exists(machine):
        out.append("```text")
        out.append(open(machine).read().rstrip())
        out.append("```\n")
    for name in DATASETS:
        path = os.path.join(bench_dir, f"{name}.info.json")
        if os.path.exists(path):
            report_dataset(name, json.load(open(path)), rows, out)
    problems = os.path.join(bench_dir, "problems.txt")
    if os.path.exists(problems):
        out.append("### Problems seen during the run\n")
        out.extend(f"- {line.rstrip()}" for line in open(problems) if line.strip())
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
