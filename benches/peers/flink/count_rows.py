#!/usr/bin/env python3
"""Checks that a benchmark run delivered the right number of rows, independently of the
numbers the engine prints in its summary where it can: a run that lost rows fails, and its
CPU numbers are never reported.

Checks per run (JOB a/b/c with N source rows):
  - the process exited 0 and the job finished (Weir: `finished in` in its summary; Flink: the
    FLINKRUN line RunSql prints after the job's result arrived);
  - the source emitted N rows (Weir: `records in`; Flink: `Source: orders` numRecordsOut);
  - the sink received N rows (job a), or, after the filter (jobs b and c), a count within 6
    standard deviations of N/2 (each row passes with probability 1/2: `status` is uniform over 4
    values, 2 pass) and, for Flink, exactly the rows the filter emitted;
  - job c: the committed CSV part files (read here, line by line) hold exactly the rows the sink
    received; in-progress (hidden) files are counted and reported.
Weir's generator is seeded, so its rounds at one parallelism must also agree with each other
(the round runner compares them).

Usage: count_rows.py csv DIR                 rows in the committed CSV files under DIR
       count_rows.py check SYSTEM JOB N RUNDIR   runs the checks, prints JSON, exit 1 on failure
"""
import json
import math
import os
import re
import sys

from jobs import FILTER_SELECTIVITY, JOBS

# Standard deviations a filtered count may stray from N * FILTER_SELECTIVITY: a false alarm has
# a probability of about 2e-9; losing a checkpoint's worth of rows (hundreds of thousands at
# full scale) is far outside.
SIGMAS = 6


def count_csv(root):
    """Rows (newlines) in the committed files under `root`: files and directories whose names
    start with '.' or '_' are in-progress or metadata files (Flink's `.part-*.inprogress.*`) and
    are only counted in `hidden`."""
    files = rows = size = hidden = 0
    for dirpath, dirnames, filenames in os.walk(root):
        hidden += sum(1 for d in dirnames if d.startswith((".", "_")))
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        for name in filenames:
            if name.startswith((".", "_")):
                hidden += 1
                continue
            path = os.path.join(dirpath, name)
            files += 1
            size += os.path.getsize(path)
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    rows += block.count(b"\n")
    return {"files": files, "rows": rows, "bytes": size, "hidden": hidden}


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def weir_counts(run_dir):
    """Source rows, sink rows and completed checkpoints from Weir's summary on stderr."""
    err = _read(os.path.join(run_dir, "stderr.txt"))
    found = {
        "finished": re.search(r"weir: job `[^`]*` finished in", err) is not None,
        "source_out": None, "sink_in": None, "checkpoints": 0,
    }
    m = re.search(r"^\s+records in\s+(\d+)", err, re.M)
    if m:
        found["source_out"] = int(m.group(1))
    m = re.search(r"^\s+records out\s+(\d+)", err, re.M)
    if m:
        found["sink_in"] = int(m.group(1))
    m = re.search(r"^\s+checkpoints\s+(\d+) completed", err, re.M)
    if m:
        found["checkpoints"] = int(m.group(1))
    return found


def flink_counts(run_dir, job):
    """Source rows, filter output, sink rows and checkpoints from RunSql's FLINKCOUNT lines."""
    out = _read(os.path.join(run_dir, "stdout.txt"))
    counters = {}
    for op, metric, value in re.findall(r"^FLINKCOUNT operator=(\S+) metric=(\S+) value=(\d+)$",
                                        out, re.M):
        counters[(op, metric)] = int(value)

    def one(pattern, metric):
        hits = [v for (op, m), v in counters.items() if m == metric and re.fullmatch(pattern, op)]
        return hits[0] if len(hits) == 1 else None

    # Operator names of Flink 2.3's plans: `Source: orders[1]`, `Calc[2]`, the blackhole's
    # `sink[3]: Writer`, the filesystem sink's `StreamingFileWriter`.
    sink_op = r"StreamingFileWriter" if JOBS[job][4] == "csv" else r"sink\[\d+\]:_Writer"
    log = _read(os.path.join(run_dir, "flink.log"))
    return {
        "finished": re.search(r"^FLINKRUN ", out, re.M) is not None,
        "source_out": one(r"Source:_orders\[\d+\]", "numRecordsOut"),
        "filter_out": one(r"Calc\[\d+\]", "numRecordsOut"),
        "sink_in": one(sink_op, "numRecordsIn"),
        "checkpoints": len(re.findall(r"Completed checkpoint \d+ for job", log)),
    }


def check(system, job, rows, run_dir):
    """Runs the checks on one run directory; returns a dict with `ok` and `errors`."""
    errors = []
    rc = _read(os.path.join(run_dir, "rc.txt")).strip()
    if rc != "0":
        errors.append(f"the process exited with {rc or 'no status'} (see stderr.txt)")
    counts = weir_counts(run_dir) if system == "weir" else flink_counts(run_dir, job)
    if not counts["finished"]:
        errors.append("the job did not report that it finished")
    if counts["source_out"] != rows:
        errors.append(f"the source emitted {counts['source_out']} rows, expected {rows}")
    sink = counts["sink_in"]
    filtered = JOBS[job][3]
    if sink is None:
        errors.append("no sink row count found")
    elif not filtered and sink != rows:
        errors.append(f"the sink received {sink} rows, expected {rows}")
    elif filtered:
        mean = rows * FILTER_SELECTIVITY
        bound = SIGMAS * math.sqrt(rows * FILTER_SELECTIVITY * (1 - FILTER_SELECTIVITY))
        if abs(sink - mean) > bound:
            errors.append(f"the sink received {sink} rows, expected {mean:.0f} ± {bound:.0f} "
                          f"({SIGMAS} σ of the filter's binomial count)")
        if system == "flink" and counts.get("filter_out") != sink:
            errors.append(f"the filter emitted {counts.get('filter_out')} rows but the sink "
                          f"received {sink}")
    result = {"system": system, "job": job, "rows": rows, **counts}
    if JOBS[job][4] == "csv":
        csv = count_csv(os.path.join(run_dir, "out"))
        result["csv"] = csv
        if csv["rows"] != sink:
            errors.append(f"the committed CSV files hold {csv['rows']} rows, the sink received "
                          f"{sink} ({csv['files']} files, {csv['hidden']} hidden/in-progress)")
    result["errors"] = errors
    result["ok"] = not errors
    return result


def main(argv):
    if len(argv) == 3 and argv[1] == "csv":
        print(json.dumps(count_csv(argv[2])))
        return 0
    if len(argv) == 6 and argv[1] == "check" and argv[2] in ("weir", "flink") and argv[3] in JOBS:
        result = check(argv[2], argv[3], int(argv[4]), argv[5])
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
