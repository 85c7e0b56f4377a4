#!/usr/bin/env bash
# Kafka into a columnar pipeline (issue 18): CPU seconds of the release `weir` reading JSON
# orders from noida-db's Kafka API → filter + select → Parquet (hourly buckets, exactly-once,
# 100 ms checkpoints) or blackhole, parallelism 2, interleaved rounds, under /usr/bin/time -v:
#   rows     `$WEIR` with WEIR_PIPELINE_ENGINE=rows
#   native   `$WEIR` with WEIR_PIPELINE_ENGINE=columns (the Kafka source reads chunks natively)
#   adapter  `$WEIR_ADAPTER` with WEIR_PIPELINE_ENGINE=columns: a `weir` whose Kafka connector
#            has no columnar source (a build from before it), so its rows go through the
#            runtime's rows-into-chunks adapter (skipped when WEIR_ADAPTER is unset)
#
#   cargo build --release -p weir-cli
#   NOIDA_DB_BIN=<noida-db> WEIR_ADAPTER=<older weir> benches/kafka-columns/run.sh [records (400000)] [rounds (3)]
#
# The input is written first (not measured) by a datagen → kafka exactly-once job (noida-db
# 0.2.3 fails on topics of 1.2 M records and more: stay at 400 k).
# Prints one line per run: sink variant round user_s sys_s cpu_s rows_out max_rss_kb.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
weir="${WEIR:-$here/../../target/release/weir}"
adapter="${WEIR_ADAPTER:-}"
records="${1:-400000}"
rounds="${2:-3}"
noida="${NOIDA_DB_BIN:?set NOIDA_DB_BIN to the noida-db binary (cargo xtask deps installs it)}"
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
"$noida" start --data-dir "$work/data" --host 127.0.0.1 --only kafka --kafka-port "$port" \
  > "$work/noida.log" 2>&1 &
noida_pid=$!
trap 'kill "$noida_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
bootstrap="127.0.0.1:$port"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
schema='schema = [
  { name = "id", type = "int64", nullable = false },
  { name = "customer", type = "string" },
  { name = "status", type = "string" },
  { name = "amount", type = "float64" },
  { name = "at", type = "timestamp" },
]'
cat > "$work/gen.toml" <<TOML
[pipeline]
name = "gen"
parallelism = 2

[checkpointing]
interval = "1s"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "datagen"
$schema

[sources.options]
number-of-rows = $records
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
connector = "kafka"
format = "json"
[sinks.options]
properties.bootstrap.servers = "$bootstrap"
topic = "orders"
sink.delivery-guarantee = "exactly-once"
sink.transactional-id-prefix = "bench-gen"
TOML
# noida-db creates the topic on its first write, with its default partition count.
(cd "$work" && "$weir" run gen.toml --progress quiet > /dev/null 2> "$work/gen.err") || {
  cat "$work/gen.err"; exit 1; }
for sink in parquet blackhole; do
  if [ "$sink" = parquet ]; then
    sink_options='connector = "files"
[sinks.options]
path = "out"
format = "parquet"
bucket.time-field = "at"
bucket.date-time-format = "%Y-%m-%d--%H"'
  else
    sink_options='connector = "blackhole"'
  fi
  cat > "$work/read-$sink.toml" <<TOML
[pipeline]
name = "read"
parallelism = 2

[checkpointing]
interval = "100ms"
mode = "exactly-once"
storage = "chk"

[[sources]]
name = "orders"
connector = "kafka"
format = "json"
$schema

[sources.options]
properties.bootstrap.servers = "$bootstrap"
topic = "orders"
scan.startup.mode = "earliest-offset"
scan.bounded.mode = "latest-offset"

[[transforms]]
name = "kept"
input = "orders"
filter = "amount > 30 or amount is null"
select = ["id", "amount", "at"]

[[sinks]]
name = "out"
input = "kept"
$sink_options
TOML
done
variants="rows native"
[ -n "$adapter" ] && variants="$variants adapter"
for round in $(seq "$rounds"); do
  for sink in parquet blackhole; do
    for variant in $variants; do
      run="$work/run-$sink-$variant-$round"
      mkdir -p "$run"
      cp "$work/read-$sink.toml" "$run/p.toml"
      case "$variant" in
        rows) bin="$weir"; engine=rows ;;
        native) bin="$weir"; engine=columns ;;
        adapter) bin="$adapter"; engine=columns ;;
      esac
      (cd "$run" && WEIR_PIPELINE_ENGINE=$engine /usr/bin/time -v "$bin" run p.toml \
        --progress quiet > /dev/null 2> err) || { cat "$run/err"; exit 1; }
      user=$(awk -F': ' '/User time/ {print $2}' "$run/err")
      sys=$(awk -F': ' '/System time/ {print $2}' "$run/err")
      rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$run/err")
      out=$(grep -m1 "records out" "$run/err" | awk '{print $3}')
      adapted=$(grep -o "([0-9] of [0-9] sources read rows through the adapter)" "$run/err" \
        | head -1 | cut -c2 || true)
      printf '%s %s %s %s %s %s %s %s adapted=%s\n' "$sink" "$variant" "$round" "$user" "$sys" \
        "$(echo "$user + $sys" | bc)" "$out" "$rss" "${adapted:--}"
      rm -rf "$run/out" "$run/chk"
    done
  done
done
