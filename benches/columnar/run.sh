#!/usr/bin/env bash
# Pipelines on Arrow (issue 18): CPU seconds per million rows of jobs a, b and c on the row
# path and the columnar path of the release `weir`, interleaved rounds, with /usr/bin/time -v.
#
#   cargo build --release -p weir-cli
#   benches/columnar/run.sh [rows (default 20000000)] [rounds (default 3)]
#
# The jobs (job-{a,b,c}.toml, parallelism 1) are those of the Flink side-by-side harness
# (benches/peers/flink/jobs.py): a = datagen (5 fields) -> blackhole; b = + filter on status
# and select, exactly-once checkpoints every 1 s; c = like b into CSV part files.
# Prints one line per run: job engine round user_s sys_s cpu_s_per_million_rows max_rss_kb.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
weir="${WEIR:-$here/../../target/release/weir}"
rows="${1:-20000000}"
rounds="${2:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "# $(date -u +%FT%TZ) rows=$rows rounds=$rounds load=$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  for job in a b c; do
    for engine in rows columns; do
      dir="$work/$job-$engine-$round"
      mkdir -p "$dir"
      sed "s/__ROWS__/$rows/" "$here/job-$job.toml" > "$dir/p.toml"
      (cd "$dir" && WEIR_PIPELINE_ENGINE=$engine /usr/bin/time -v "$weir" run p.toml \
        --progress quiet > /dev/null 2> time.txt)
      user=$(awk -F': ' '/User time/ {print $2}' "$dir/time.txt")
      sys=$(awk -F': ' '/System time/ {print $2}' "$dir/time.txt")
      rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/time.txt")
      per=$(echo "$user $sys $rows" | awk '{printf "%.3f", ($1 + $2) / ($3 / 1000000)}')
      echo "$job $engine $round $user $sys $per $rss"
      rm -rf "$dir"
    done
  done
done
echo "# end $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"
