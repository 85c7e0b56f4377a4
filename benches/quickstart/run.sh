#!/usr/bin/env bash
# The quickstart's Parquet job against a bare ArrowWriter program (issue 18): CPU seconds of
# the release `weir` running examples/quickstart.toml (10 M orders, filter, select, Parquet
# files by day with compaction, exactly-once, parallelism 2) and of the `bare_parquet` example
# (the same orders, filter and projection written with a bare ArrowWriter, same codec and row
# groups, one file per day; `bare` generates only the rows that pass, `bare-columns` all five
# columns then filters with Arrow's kernels, see the example's docs), interleaved rounds, with
# /usr/bin/time -v. Also the quickstart with compaction off. Every run's Parquet rows are counted with pyarrow (the test venv) and
# must be equal.
#
#   cargo build --release -p weir-cli --bin weir --example bare_parquet
#   benches/quickstart/run.sh [rounds (default 3)]
#
# With WEIR_BASE=<another weir binary> (e.g. a build of the commit before a change), each round
# also runs that binary's quickstart (`base`) and its quickstart without compaction
# (`base-no-compaction`), interleaved with the others: a before/after in one run.
#
# Prints one line per run: variant round user_s sys_s cpu_s max_rss_kb parquet_rows.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
weir="${WEIR:-$root/target/release/weir}"
bare="${BARE:-$root/target/release/examples/bare_parquet}"
python="${PYTHON:-$root/target/test-servers/venv/bin/python}"
rounds="${1:-3}"
base="${WEIR_BASE:-}"
variants="weir bare bare-columns weir-no-compaction"
if [ -n "$base" ]; then variants="$variants base base-no-compaction"; fi
rows=10000000
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
count() {
  "$python" -c 'import sys, pathlib, pyarrow.parquet as pq
print(sum(pq.ParquetFile(p).metadata.num_rows for p in pathlib.Path(sys.argv[1]).rglob("*.parquet") if not p.name.startswith(".")))' "$1"
}
measure() { # variant round dir output... command...
  local variant=$1 round=$2 dir=$3 out=$4; shift 4
  (cd "$dir" && /usr/bin/time -v "$@" > /dev/null 2> time.txt)
  local user sys rss
  user=$(awk -F': ' '/User time/ {print $2}' "$dir/time.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$dir/time.txt")
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$dir/time.txt")
  echo "$variant $round $user $sys $(echo "$user $sys" | awk '{printf "%.2f", $1 + $2}') $rss $(count "$dir/$out")"
}
echo "# $(date -u +%FT%TZ) rounds=$rounds load=$(cut -d' ' -f1-3 /proc/loadavg)"
sed 's/^compaction.enabled = true/compaction.enabled = false/' "$root/examples/quickstart.toml" \
  > "$work/no-compaction.toml"
for round in $(seq 1 "$rounds"); do
  for variant in $variants; do
    dir="$work/$variant-$round"
    mkdir -p "$dir"
    case $variant in
      weir) measure "$variant" "$round" "$dir" out/orders \
        "$weir" run "$root/examples/quickstart.toml" --progress quiet ;;
      weir-no-compaction) measure "$variant" "$round" "$dir" out/orders \
        "$weir" run "$work/no-compaction.toml" --progress quiet ;;
      base) measure "$variant" "$round" "$dir" out/orders \
        "$base" run "$root/examples/quickstart.toml" --progress quiet ;;
      base-no-compaction) measure "$variant" "$round" "$dir" out/orders \
        "$base" run "$work/no-compaction.toml" --progress quiet ;;
      bare) measure "$variant" "$round" "$dir" out "$bare" "$rows" out fused ;;
      bare-columns) measure "$variant" "$round" "$dir" out "$bare" "$rows" out columns ;;
    esac
    rm -rf "$dir"
  done
done
echo "# end $(date -u +%FT%TZ) load=$(cut -d' ' -f1-3 /proc/loadavg)"
