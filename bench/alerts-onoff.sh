#!/bin/bash
# Collector ingest with alert rules on, on without the first-seen rule ("quiet"), and off:
# one ingestload run of 1M events against a fresh collector; prints events/s, the
# collector's CPU ticks (1/100 s) and peak RSS, and the alerts it raised, by rule.
# T=target/release bench/alerts-onoff.sh on|quiet|off   (see BENCHMARKS.md, "Alerts")
set -e
mode=$1
T=${T:-target/release}
d=$(mktemp -d)
en=true; [ "$mode" = off ] && en=false
extra=""; [ "$mode" = quiet ] && extra=$(printf '[[alerts.rules]]\nname = "ssh_new_source"\nkind = "first_seen"\nenabled = false\n')
cat > $d/c.toml <<EOT
data_dir = "$d/data"
listen = "127.0.0.1:18750"
insecure_plain_http = true
[metrics]
enabled = false
[log]
level = "warn"
[[tokens]]
name = "i"
role = "ingest"
agents = ["a1", "a2", "a3", "a4"]
token = "T0123456789abcdef"
[alerts]
enabled = $en
$extra
EOT
$T/auditship collector --config $d/c.toml 2> $d/collector.log &
pid=$!
for i in $(seq 100); do curl -s http://127.0.0.1:18750/health >/dev/null && break; sleep 0.1; done
$T/ingestload --url http://127.0.0.1:18750 --token T0123456789abcdef --agents a1,a2,a3,a4 --events ${EVENTS:-1000000} ${LOADARGS} --batch 5000 2>&1 | tail -3
sleep 12
read -r -a st < /proc/$pid/stat
cpu=$(( ${st[13]} + ${st[14]} ))
hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
alerts=$(sed "s/\x1b\[[0-9;]*m//g" $d/collector.log | grep -c " alert alert=" || true); behind=$(grep -c "alerts are behind" $d/collector.log || true); sed "s/\x1b\[[0-9;]*m//g" $d/collector.log | grep -o "rule=[a-z_0-9]*" | sort | uniq -c | tr "\n" " "; echo
kill -TERM $pid; wait $pid || true
echo "mode=$mode collector_cpu_ticks=$cpu hwm_kb=$hwm alerts=$alerts behind=$behind"
[ -n "$KEEP" ] && echo $d || rm -rf $d
