#!/usr/bin/env python3
"""Summarises a peer-benchmark run directory (written by run_rounds.py) as markdown.

Usage: parse_results.py RESULTS_DIR [--details]

Only runs whose row-count check passed (check.json, see count_rows.py) enter the table; runs that
failed their check are listed below it and make the exit status 1.

Per run:
  CPU s      user + system CPU seconds of the whole process (/usr/bin/time -v), start-up included
  job CPU s  Flink only: process CPU from submitting the job to its result (RunSql's
             cpu_submit_to_done_ms): the job alone, the JVM start, planning and submission excluded.
             The issue's target compares Weir's whole process with this.
  CPU s/M    CPU seconds per million source rows
  peak RSS   maximum resident set size of the process (/usr/bin/time -v)
  load       the 1-minute load average before the run (/proc/loadavg)
Summary: median over the rounds, the spread (min–max), the ratio of the medians Weir / Flink,
and the median (min–max) of the same-round ratios (Weir over the Flink run of the same round).
"""
import glob
import json
import os
import re
import statistics
import sys

from jobs import JOBS

TARGET_RATIO = 0.10


def read(path):
    """A file's text, or "" if it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def time_v(run_dir):
    """(wall s, user+sys CPU s, peak RSS MB) from /usr/bin/time -v's report, or None."""
    t = read(os.path.join(run_dir, "time.txt"))
    user = re.search(r"User time \(seconds\): ([\d.]+)", t)
    sys_ = re.search(r"System time \(seconds\): ([\d.]+)", t)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", t)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    if not (user and sys_ and wall and rss):
        return None
    parts = [float(x) for x in wall.group(1).split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return seconds, float(user.group(1)) + float(sys_.group(1)), int(rss.group(1)) / 1024


def flink_run_line(run_dir):
    """RunSql's FLINKRUN key=value pairs (milliseconds), or {}."""
    m = re.search(r"^FLINKRUN (.*)$", read(os.path.join(run_dir, "stdout.txt")), re.M)
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())} if m else {}


def run_row(system, run_dir):
    """One run's numbers, or None if its time report is missing."""
    tv = time_v(run_dir)
    if tv is None:
        return None
    wall, cpu, rss = tv
    chk = json.loads(read(os.path.join(run_dir, "check.json")) or "{}")
    rows = chk.get("rows") or 0
    row = {"round": int(run_dir.rsplit("-r", 1)[1]), "system": system, "wall": wall, "cpu": cpu,
           "rss": rss, "rows": rows, "sink": chk.get("sink_in"),
           "ckpts": chk.get("checkpoints"), "ok": bool(chk.get("ok")),
           "errors": chk.get("errors") or (["no check.json: the run was not checked"]
                                           if not chk else []),
           "job_s": None, "job_cpu": None}
    load = re.search(r"before: ([\d.]+)", read(os.path.join(run_dir, "load.txt")))
    row["load"] = float(load.group(1)) if load else None
    if system == "weir":
        m = re.search(r"finished in ([\d.]+) s", read(os.path.join(run_dir, "stderr.txt")))
        row["job_s"] = float(m.group(1)) if m else None
    else:
        kv = flink_run_line(run_dir)
        if kv:
            row["job_s"] = kv["submit_to_done_ms"] / 1000
            row["job_cpu"] = kv["cpu_submit_to_done_ms"] / 1000
    mrows = rows / 1e6 if rows else None
    row["cpu_m"] = cpu / mrows if mrows else None
    row["job_cpu_m"] = row["job_cpu"] / mrows if mrows and row["job_cpu"] is not None else None
    return row


def collect(results_dir):
    """{(job, P): [run rows]} for every <job>-p<P> directory."""
    runs = {}
    for d in sorted(glob.glob(os.path.join(results_dir, "*-p*"))):
        m = re.fullmatch(r"([a-z])-p(\d+)", os.path.basename(d))
        if not m or m.group(1) not in JOBS:
            continue
        key = (m.group(1), int(m.group(2)))
        for system in ("weir", "flink"):
            for run_dir in glob.glob(os.path.join(d, f"{system}-r*")):
                row = run_row(system, run_dir)
                if row is not None:
                    runs.setdefault(key, []).append(row)
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values, nd=2):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = statistics.median(values)
    return f"{m:.{nd}f} ({min(values):.{nd}f}–{max(values):.{nd}f})"


def summary(runs, meta):
    """The markdown summary table and the list of failed runs."""
    lines = [
        "| job | P | rounds | Weir CPU s / M rows | Flink CPU s / M rows, job alone "
        "| Weir / Flink | same-round Weir / Flink | target ≤ 0.10 "
        "| Flink CPU s / M rows, whole process "
        "| Weir peak RSS MB | Flink peak RSS MB | load before runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    failed = []
    rows_of = meta.get("rows", {})
    full = meta.get("mode", "full") == "full"
    for (job, p) in sorted(runs, key=lambda k: (k[1], k[0])):
        good = [r for r in runs[(job, p)] if r["ok"]]
        failed += [(job, p, r) for r in runs[(job, p)] if not r["ok"]]
        w = [r for r in good if r["system"] == "weir"]
        f = [r for r in good if r["system"] == "flink"]
        wm, fm = med([r["cpu_m"] for r in w]), med([r["job_cpu_m"] for r in f])
        ratio = wm / fm if wm and fm else None
        # Per round, Weir over the Flink run next to it: steadier than the ratio of medians
        # when the whole machine slows down for a while (both engines slow down together).
        flink_by_round = {r["round"]: r["job_cpu_m"] for r in f if r["job_cpu_m"]}
        paired = [r["cpu_m"] / flink_by_round[r["round"]] for r in w
                  if r["cpu_m"] and r["round"] in flink_by_round]
        rows = rows_of.get(job)
        name = f"{job}. {JOBS[job][0]}" + (f", {rows / 1e6:g} M rows" if rows else "")
        loads = [r["load"] for r in good if r["load"] is not None]
        lines.append(
            f"| {name} | {p} | {min(len(w), len(f))} | {spread([r['cpu_m'] for r in w])} "
            f"| {spread([r['job_cpu_m'] for r in f])} "
            f"| {'–' if ratio is None else f'{ratio:.2f}'} | {spread(paired)} "
            f"| {'–' if ratio is None or not full else ('met' if ratio <= TARGET_RATIO else 'not met')} "
            f"| {spread([r['cpu_m'] for r in f])} "
            f"| {spread([r['rss'] for r in w], 1)} | {spread([r['rss'] for r in f], 0)} "
            f"| {f'{min(loads):.1f}–{max(loads):.1f}' if loads else '–'} |")
    return lines, failed


def details(runs):
    """Per-run markdown tables."""
    out = []
    for (job, p) in sorted(runs, key=lambda k: (k[1], k[0])):
        out += ["", f"### {job}-p{p}", "",
                "| system | round | rows | sink rows | wall s | job s | CPU s | job CPU s "
                "| CPU s / M | job CPU s / M | peak RSS MB | checkpoints | load | check |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(runs[(job, p)], key=lambda r: (r["system"] != "weir", r["round"])):
            def f(x, nd=2):
                return "–" if x is None else f"{x:.{nd}f}"
            out.append(
                f"| {r['system']} | {r['round']} | {r['rows']} | {r['sink']} | {f(r['wall'], 1)} "
                f"| {f(r['job_s'], 1)} | {f(r['cpu'], 1)} | {f(r['job_cpu'], 1)} "
                f"| {f(r['cpu_m'])} | {f(r['job_cpu_m'])} | {f(r['rss'], 1)} | {r['ckpts']} "
                f"| {f(r['load'])} | {'ok' if r['ok'] else 'FAILED'} |")
    return out


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    results_dir = argv[1]
    meta = json.loads(read(os.path.join(results_dir, "meta.json")) or "{}")
    runs = collect(results_dir)
    if not runs:
        sys.stderr.write(f"no runs under {results_dir}\n")
        return 1
    lines, failed = summary(runs, meta)
    print("\n".join(lines))
    print()
    if meta.get("mode", "full") != "full":
        print(f"**{meta['mode']}**\n")
    for key in ("weir_commit", "weir_engine", "weir_version", "flink_version", "java_version", "cpu", "started",
                "finished"):
        if meta.get(key):
            print(f"- {key.replace('_', ' ')}: {meta[key]}")
    if "--details" in argv:
        print("\n".join(details(runs)))
    if failed:
        print("\nRuns that failed their row-count check (not in the table):")
        for job, p, r in failed:
            print(f"- {job}-p{p} {r['system']} round {r['round']}: {'; '.join(r['errors'])}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
