#!/usr/bin/env bash
# Retention throughput: a release collector, EVENTS events from ingestload,
# then a dry run, a real run (archive to a local dir), verify, archive verify.
# Build first: cargo build --release -p auditship -p auditship-load
# Needs about 2.5 GB free for the default 1.2 M events; starts by removing $RETENTION_BENCH_DIR.
set -euo pipefail
B=${CARGO_TARGET_DIR:-target}/release
D=${RETENTION_BENCH_DIR:-/tmp/retention-bench}
rm -rf "$D"; mkdir -p "$D"
PORT=18473
cat > "$D/collector.toml" <<CFG
data_dir = "$D/data"
listen = "127.0.0.1:$PORT"
insecure_plain_http = true
[metrics]
enabled = false
[store]
segment_bytes = "64MiB"
[retention]
interval = "0s"
[[retention.policies]]
name = "web"
categories = ["web"]
max_age = "1d"
[retention.archive]
dir = "$D/archive"
[[tokens]]
name = "load"
role = "ingest"
agents = ["a1", "a2"]
token = "ingest-token-0123456789"
[[tokens]]
name = "admin"
role = "admin"
token = "admin-token-0123456789"
CFG
$B/auditship collector --config "$D/collector.toml" 2> "$D/collector.log" &
CP=$!
trap 'kill $CP 2>/dev/null || true' EXIT
sleep 1
$B/ingestload --url http://127.0.0.1:$PORT --token ingest-token-0123456789 --agents a1,a2 --events ${EVENTS:-1200000} --batch 5000 2>&1 | tail -3
sleep 12
du -sh "$D/data/store"; ls "$D/data/store/segments" | grep -c seg
A=(--url http://127.0.0.1:$PORT --token admin-token-0123456789)
/usr/bin/time -f "dry run: %e s, max RSS %M KB" $B/auditship retention run --dry-run "${A[@]}"
/usr/bin/time -f "real run: %e s, max RSS %M KB" $B/auditship retention run "${A[@]}"
du -sh "$D/data/store" "$D/archive"
kill -TERM $CP; wait $CP || true
/usr/bin/time -f "verify: %e s" $B/auditship verify --store "$D/data" --pubkey "$D/data/collector.pub" | tail -3
/usr/bin/time -f "archive verify: %e s" $B/auditship archive verify --config "$D/collector.toml" | tail -1
