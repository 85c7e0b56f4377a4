#!/usr/bin/env python3
"""Runs the peer benchmark: every job at every parallelism, Weir and Flink interleaved, each run
one process under `/usr/bin/time -v`, checked by count_rows.py right after it ran.

Round-major order: round r runs every (parallelism, job) pair before round r+1 starts, so a
change of machine load spreads over all jobs instead of hitting one; within a pair Weir runs
first in odd rounds and Flink first in even rounds. The first run whose row count is wrong stops
the benchmark (exit 1): its numbers are never reported.

Layout of OUT:
  meta.json                    what ran where (versions, commit, machine, row counts)
  jobs/                        the generated jobs (jobs.py)
  <job>-p<P>/<system>-r<N>/    job.toml or job.sql, load.txt (/proc/loadavg and /proc/stat's
                               cpu line before and after),
                               time.txt (/usr/bin/time -v), stdout.txt, stderr.txt, rc.txt,
                               flink.log, check.json (count_rows.py)
Outputs (CSV part files, checkpoints) are deleted after the check unless --keep-output. A run
from round 1 first removes an earlier run's results from OUT; --start N adds rounds to them.

`cargo xtask bench-peers` sets this up and calls it; run it by hand with the same arguments.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import count_rows
import jobs
from parse_results import time_v

HERE = os.path.dirname(os.path.abspath(__file__))

# Flink's own JVM options for Java 17 (the distribution's `env.java.opts.all`).
JAVA_OPENS = [
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
] + [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
    "java.lang", "java.net", "java.io", "java.nio", "sun.nio.ch", "java.lang.reflect",
    "java.text", "java.time", "java.util", "java.util.concurrent",
    "java.util.concurrent.atomic", "java.util.concurrent.locks")]


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def cpu_line():
    """The machine's `cpu` line of /proc/stat (its 8th number is the time stolen by the host)."""
    with open("/proc/stat", encoding="ascii") as f:
        return f.readline().strip()


def timed(cmd, run_dir):
    """Runs `cmd` in `run_dir` under /usr/bin/time -v; records load, output and exit status."""
    with open(os.path.join(run_dir, "load.txt"), "w", encoding="ascii") as f:
        f.write(f"before: {loadavg()} at {now()}\n{cpu_line()}\n")
    with open(os.path.join(run_dir, "stdout.txt"), "wb") as out, \
            open(os.path.join(run_dir, "stderr.txt"), "wb") as err:
        rc = subprocess.call(["/usr/bin/time", "-v", "-o", "time.txt", *cmd], cwd=run_dir,
                             stdout=out, stderr=err)
    with open(os.path.join(run_dir, "rc.txt"), "w", encoding="ascii") as f:
        f.write(f"{rc}\n")
    with open(os.path.join(run_dir, "load.txt"), "a", encoding="ascii") as f:
        f.write(f"after: {loadavg()} at {now()}\n{cpu_line()}\n")


def weir_cmd(args, job, p, run_dir):
    with open(os.path.join(args.out, "jobs", f"weir-{job}.toml"), encoding="utf-8") as f:
        text = f.read().replace("__P__", str(p))
    with open(os.path.join(run_dir, "job.toml"), "w", encoding="utf-8") as f:
        f.write(text)
    return [args.weir, "run", "job.toml", "--progress", "quiet"]


def flink_cmd(args, job, p, run_dir):
    with open(os.path.join(args.out, "jobs", f"flink-{job}.sql"), encoding="utf-8") as f:
        text = f.read().replace("__RUNDIR__", run_dir)
    with open(os.path.join(run_dir, "job.sql"), "w", encoding="utf-8") as f:
        f.write(text)
    conf = [f"parallelism.default={p}",
            "metrics.reporter.rows.factory.class=RowCountReporterFactory"]
    if jobs.JOBS[job][2]:
        conf += ["execution.checkpointing.interval=1s",
                 "execution.checkpointing.mode=EXACTLY_ONCE",
                 f"execution.checkpointing.dir=file://{run_dir}/ckpt"]
    classpath = f"{args.flink_classes}:{os.path.join(args.pyflink, 'lib')}/*"
    return [args.java, *args.jvm_opt, *JAVA_OPENS, f"-Dlog.file={run_dir}/flink.log",
            f"-Dlog4j.configurationFile={os.path.join(HERE, 'java', 'log4j2.properties')}",
            "-cp", classpath, "RunSql", "job.sql", *conf]


def run_one(args, system, job, p, rnd, weir_sinks):
    """One run and its check; returns False if the check failed."""
    run_dir = os.path.join(args.out, f"{job}-p{p}", f"{system}-r{rnd}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    build = weir_cmd if system == "weir" else flink_cmd
    timed(build(args, job, p, run_dir), run_dir)
    rows = args.rows[job]
    result = count_rows.check(system, job, rows, run_dir)
    # Weir's generator is seeded: every round at one parallelism must deliver the same rows.
    if system == "weir" and result["ok"]:
        earlier = weir_sinks.setdefault((job, p), result["sink_in"])
        if earlier != result["sink_in"]:
            result["errors"].append(f"the sink received {result['sink_in']} rows, an earlier "
                                    f"round of this seeded job {earlier}")
            result["ok"] = False
    with open(os.path.join(run_dir, "check.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    if not args.keep_output:
        for sub in ("out", "ckpt", "savepoints"):
            shutil.rmtree(os.path.join(run_dir, sub), ignore_errors=True)
    tv = time_v(run_dir)
    cpu = f"cpu {tv[1]:6.1f} s ({tv[1] / rows * 1e6:.2f} s/M rows) rss {tv[2]:7.1f} MB " \
          f"wall {tv[0]:6.1f} s" if tv else "no time report"
    status = "ok" if result["ok"] else "FAILED: " + "; ".join(result["errors"])
    print(f"{now()} r{rnd} {job} p{p} {system:5} {cpu} load {loadavg().split()[0]} {status}",
          flush=True)
    return result["ok"]


def command_output(cmd):
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as e:
        return f"({e})"
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr) \
        else ""


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return f"{platform.processor()}, {os.cpu_count()} CPUs"


def clear_results(out):
    """Removes an earlier run's results from `out` (a new run with the same tag starts clean)."""
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if re.fullmatch(r"[a-z]-p\d+", name) or name == "jobs":
            shutil.rmtree(path)
        elif name in ("meta.json", "results.md"):
            os.remove(path)


def write_meta(args, keep_existing):
    path = os.path.join(args.out, "meta.json")
    meta = {}
    if keep_existing and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    version = {}
    with open(os.path.join(args.pyflink, "version.py"), encoding="utf-8") as f:
        exec(f.read(), version)  # noqa: S102 -- PyFlink's own `__version__ = "…"` file
    meta.update({
        "rows": args.rows, "jobs": args.jobs, "parallelism": args.parallelism,
        "rounds": args.rounds, "weir_version": command_output([args.weir, "--version"]),
        # Weir's pipeline engine (rows or Arrow columns), inherited by every `weir run`.
        "weir_engine": "WEIR_PIPELINE_ENGINE=" + os.environ.get("WEIR_PIPELINE_ENGINE",
                                                                "auto (unset)"),
        "flink_version": f"Apache Flink {version.get('__version__')} (PyPI apache-flink), "
                         f"local MiniCluster",
        "java_version": command_output([args.java, "-version"]),
        "jvm_options": " ".join(args.jvm_opt) or "default ergonomics",
        "cpu": cpu_model(), "kernel": platform.release(),
    })
    meta.setdefault("started", now())
    meta["mode"] = "full" if args.scale == 1.0 else (
        f"scale {args.scale:g}: fewer rows than the issue's jobs (Flink's start-up and JIT "
        f"weigh more per row), so the target column stays empty")
    for kv in args.meta:
        key, _, value = kv.partition("=")
        meta[key] = value
    with open(path, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return meta


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the results directory")
    ap.add_argument("--weir", required=True, help="the weir binary (a release build)")
    ap.add_argument("--java", default="java", help="java of a JDK 17")
    ap.add_argument("--flink-classes", required=True,
                    help="RunSql and RowCountReporter compiled, with META-INF/services")
    ap.add_argument("--pyflink", required=True,
                    help="the pyflink package directory of apache-flink (holds lib/*.jar)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--start", type=int, default=1, help="first round (to add rounds)")
    ap.add_argument("--jobs", default="a,b,c")
    ap.add_argument("--parallelism", default="1,2")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies every job's row count (a, b: 50 M; c: 20 M)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    ap.add_argument("--keep-output", action="store_true")
    ap.add_argument("--jvm-opt", action="append", default=[], help="extra JVM option for Flink")
    ap.add_argument("--meta", action="append", default=[], help="KEY=VALUE into meta.json")
    args = ap.parse_args(argv)
    # Every run has its own working directory: paths given relative to ours must not break.
    args.out = os.path.abspath(args.out)
    args.weir = os.path.abspath(args.weir)
    args.flink_classes = os.path.abspath(args.flink_classes)
    args.pyflink = os.path.abspath(args.pyflink)
    if os.sep in args.java:
        args.java = os.path.abspath(args.java)
    args.jobs = [j for j in args.jobs.split(",") if j]
    unknown = [j for j in args.jobs if j not in jobs.JOBS]
    if unknown:
        ap.error(f"unknown job(s) {unknown}: the jobs are {', '.join(jobs.JOBS)}")
    args.parallelism = [int(p) for p in args.parallelism.split(",") if p]
    args.rows = {j: max(1, round(jobs.JOBS[j][1] * args.scale)) for j in args.jobs}
    return args


def main(argv):
    args = parse_args(argv)
    if not os.path.exists("/usr/bin/time"):
        sys.exit("run_rounds: /usr/bin/time is missing: install GNU time (Debian: apt-get "
                 "install time)")
    os.makedirs(args.out, exist_ok=True)
    if args.start == 1:
        clear_results(args.out)
    jobs.write_jobs(os.path.join(args.out, "jobs"), args.rows)
    write_meta(args, keep_existing=args.start > 1)
    # Earlier rounds' Weir sink counts (when adding rounds with --start).
    weir_sinks = {}
    for job in args.jobs:
        for p in args.parallelism:
            for rnd in range(1, args.start):
                chk = os.path.join(args.out, f"{job}-p{p}", f"weir-r{rnd}", "check.json")
                if os.path.exists(chk):
                    with open(chk, encoding="utf-8") as f:
                        weir_sinks.setdefault((job, p), json.load(f).get("sink_in"))
    for rnd in range(args.start, args.rounds + 1):
        for p in args.parallelism:
            for job in args.jobs:
                order = ("weir", "flink") if rnd % 2 == 1 else ("flink", "weir")
                for system in order:
                    if not run_one(args, system, job, p, rnd, weir_sinks):
                        print(f"run_rounds: stopped: {job}-p{p} {system} round {rnd} failed its "
                              f"row-count check (see {args.out}/{job}-p{p}/{system}-r{rnd}/)",
                              file=sys.stderr)
                        return 1
                    time.sleep(args.pause)
    meta = write_meta(args, keep_existing=True)
    meta["finished"] = now()
    with open(os.path.join(args.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
