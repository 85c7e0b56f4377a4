#!/usr/bin/env python3
"""The peer benchmark's jobs, written once for Weir (pipeline TOML) and once for Flink (SQL).

  a  datagen (5 fields) → blackhole, no checkpoints
  b  datagen → filter on status + select → blackhole, exactly-once checkpoints every 1 s
  c  like b, into CSV part files (Weir's files sink, Flink's filesystem sink)

Both generators draw every field at random (Weir seeded; Flink's datagen has no seed), `status`
uniformly from 4 values, so the filter keeps about half of the rows in both.

Usage: jobs.py OUT_DIR ROWS_A ROWS_B ROWS_C
Writes OUT_DIR/weir-{a,b,c}.toml (parallelism `__P__`) and OUT_DIR/flink-{a,b,c}.sql (the run
directory `__RUNDIR__`); the round runner fills both in per run.
"""
import os
import sys

# job -> (description, default rows, checkpoints, filter, sink)
JOBS = {
    "a": ("datagen (5 fields) → blackhole", 50_000_000, False, False, "blackhole"),
    "b": ("+ filter on status + select, exactly-once 1 s checkpoints", 50_000_000, True, True,
          "blackhole"),
    "c": ("like b, into CSV part files", 20_000_000, True, True, "csv"),
}

# The share of rows the filter keeps: `status` is one of 4 values, 2 of them pass.
FILTER_SELECTIVITY = 0.5

WEIR_SOURCE = """
[[sources]]
name = "orders"
connector = "datagen"
schema = [
  {{ name = "id", type = "int64", nullable = false }},
  {{ name = "customer", type = "string", nullable = false }},
  {{ name = "status", type = "string", nullable = false }},
  {{ name = "amount", type = "float64", nullable = false }},
  {{ name = "at", type = "timestamp", nullable = false }},
]

[sources.options]
number-of-rows = {rows}
seed = 42
fields.id.min = 0
fields.id.max = 1000000000000
fields.customer.length = 8
fields.status.values = ["new", "paid", "shipped", "cancelled"]
fields.amount.min = 1
fields.amount.max = 500
# `at`: a random timestamp within one day from 2024-01-01 (the default range)
"""

WEIR_CHECKPOINTS = """
[checkpointing]
interval = "1s"
mode = "exactly-once"
storage = "./ckpt"
"""

WEIR_TRANSFORM = """
[[transforms]]
name = "paid-orders"
input = "orders"
filter = "status = 'paid' or status = 'shipped'"
select = ["id", "customer", "amount", "at"]
"""

WEIR_BLACKHOLE = """
[[sinks]]
name = "out"
input = "{input}"
connector = "blackhole"
"""

WEIR_CSV = """
[[sinks]]
name = "csv"
input = "{input}"
connector = "files"

[sinks.options]
path = "./out"
format = "csv"
csv.header = false
bucket.assigner = "base-path"
sink.rolling-policy.file-size = "128mb"
sink.rolling-policy.rollover-interval = "30min"
sink.rolling-policy.inactivity-interval = "30min"
# Flink's CSV is a bulk format in its filesystem sink: it rolls a part file at every checkpoint.
sink.rolling-policy.on-checkpoint = true
"""

# Flink's datagen has no `values` option: `status` is a computed column over a random INT 0..3.
# Its `sequence` kind materialises the whole range and copies it at every checkpoint, so every
# field is random (Weir's too).
FLINK_SOURCE = """CREATE TEMPORARY TABLE orders (
  id BIGINT NOT NULL,
  customer STRING NOT NULL,
  status_code INT NOT NULL,
  amount DOUBLE NOT NULL,
  `at` TIMESTAMP(3) NOT NULL,
  status AS CASE status_code WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' ELSE 'cancelled' END
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '{rows}',
  'rows-per-second' = '100000000000',
  'fields.id.kind' = 'random',
  'fields.id.min' = '0',
  'fields.id.max' = '1000000000000',
  'fields.customer.length' = '8',
  'fields.status_code.min' = '0',
  'fields.status_code.max' = '3',
  'fields.amount.min' = '1',
  'fields.amount.max' = '500',
  'fields.at.max-past' = '1 d'
);
"""

FLINK_SINK_ALL = """CREATE TEMPORARY TABLE sink (
  id BIGINT, customer STRING, status STRING, amount DOUBLE, `at` TIMESTAMP(3)
) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT id, customer, status, amount, `at` FROM orders;
"""

FLINK_SINK_FILTERED = """CREATE TEMPORARY TABLE sink (
  id BIGINT, customer STRING, amount DOUBLE, `at` TIMESTAMP(3)
) WITH ({with_});
INSERT INTO sink SELECT id, customer, amount, `at` FROM orders WHERE status = 'paid' OR status = 'shipped';
"""

FLINK_BLACKHOLE = "'connector' = 'blackhole'"
FLINK_CSV = """
  'connector' = 'filesystem',
  'path' = 'file://__RUNDIR__/out',
  'format' = 'csv',
  'sink.rolling-policy.file-size' = '128MB',
  'sink.rolling-policy.rollover-interval' = '30 min',
  'sink.rolling-policy.inactivity-interval' = '30 min'
"""


def weir_pipeline(job, rows):
    """The Weir pipeline file of `job` with `rows` source rows (parallelism `__P__`)."""
    _, _, checkpoints, filtered, sink = JOBS[job]
    text = f'[pipeline]\nname = "peer-bench-{job}"\nparallelism = __P__\n'
    if checkpoints:
        text += WEIR_CHECKPOINTS
    text += WEIR_SOURCE.format(rows=rows)
    if filtered:
        text += WEIR_TRANSFORM
    sink_text = WEIR_CSV if sink == "csv" else WEIR_BLACKHOLE
    text += sink_text.format(input="paid-orders" if filtered else "orders")
    return text


def flink_script(job, rows):
    """The Flink SQL script of `job` with `rows` source rows (run directory `__RUNDIR__`)."""
    _, _, _, filtered, sink = JOBS[job]
    text = FLINK_SOURCE.format(rows=rows)
    if not filtered:
        return text + FLINK_SINK_ALL
    return text + FLINK_SINK_FILTERED.format(with_=FLINK_CSV if sink == "csv" else FLINK_BLACKHOLE)


def write_jobs(out_dir, rows):
    """Writes weir-<job>.toml and flink-<job>.sql for every job in `rows` (job -> row count)."""
    os.makedirs(out_dir, exist_ok=True)
    for job, n in rows.items():
        with open(os.path.join(out_dir, f"weir-{job}.toml"), "w", encoding="utf-8") as f:
            f.write(weir_pipeline(job, n))
        with open(os.path.join(out_dir, f"flink-{job}.sql"), "w", encoding="utf-8") as f:
            f.write(flink_script(job, n))


def main(argv):
    if len(argv) != 5:
        sys.exit(__doc__)
    write_jobs(argv[1], {"a": int(argv[2]), "b": int(argv[3]), "c": int(argv[4])})


if __name__ == "__main__":
    main(sys.argv)
