#!/usr/bin/env bash
# The files source on rows and on columns (issue 18): CPU seconds per million rows read from
# CSV, JSON lines, Parquet and ORC part files into a blackhole by the release `weir`, with
# WEIR_PIPELINE_ENGINE=rows and =columns, interleaved rounds, under /usr/bin/time -v.
#
#   cargo build --release -p weir-cli
#   benches/files-source/run.sh [rows (default 5000000)] [rounds (default 3)]
#
# The inputs are written first (not measured) by a datagen job of the five fields of jobs a-c
# (id, customer, status, amount, at; seeded, nulls in status, amount and at).
# Prints one line per run: format engine round user_s sys_s cpu_s_per_million_rows max_rss_kb.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
weir="${WEIR:-$here/../../target/release/weir}"
rows="${1:-5000000}"
rounds="${2:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
schema='schema = [
  { name = "id", type = "int64", nullable = false },
  { name = "customer", type = "string" },
  { name = "status", type = "string" },
  { name = "amount", type = "float64" },
  { name = "at", type = "timestamp" },
]'
formats="csv json parquet orc"
for format in $formats; do
  cat > "$work/gen-$format.toml" <<TOML
[pipeline]
name = "gen"

[[sources]]
name = "orders"
connector = "datagen"
$schema

[sources.options]
number-of-rows = $rows
seed = 18
fields.id.kind = "sequence"
fields.customer.length = 8
fields.status.values = "new,paid,shipped,cancelled"
fields.status.null-rate = 0.1
fields.amount.min = 0
fields.amount.max = 500
fields.amount.null-rate = 0.1
fields.at.null-rate = 0.05

[[sinks]]
name = "out"
input = "orders"
connector = "files"
[sinks.options]
path = "$work/in/$format"
format = "$format"
TOML
  (cd "$work" && "$weir" run "gen-$format.toml" --progress quiet > /dev/null 2>&1)
  cat > "$work/read-$format.toml" <<TOML
[pipeline]
name = "read"

[[sources]]
name = "orders"
connector = "files"
$schema

[sources.options]
path = "$work/in/$format"
format = "$format"

[[sinks]]
name = "out"
input = "orders"
connector = "blackhole"
TOML
done
echo "# $(date -u +%FT%TZ) rows=$rows rounds=$rounds load=$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for format in $formats; do
    for engine in rows columns; do
      (cd "$work" && WEIR_PIPELINE_ENGINE=$engine /usr/bin/time -v "$weir" run \
        "read-$format.toml" --progress quiet > /dev/null 2> "$work/time.txt")
      user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
      sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
      rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
      per=$(echo "$user $sys $rows" | awk '{printf "%.3f", ($1 + $2) / ($3 / 1000000)}')
      echo "$format $engine $round $user $sys $per $rss"
    done
  done
done
echo "# end $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"
