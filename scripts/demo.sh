#!/usr/bin/env bash
# The demo: installs what is missing, then runs a simulated area on loopback
# (snmpsimd agents serving recordings of real devices), a local InfluxDB when
# none answers on 127.0.0.1:8086 (data under data/influxdb), and the
# collector. Ctrl-C stops everything; the settings stay in data/demo/. Options
# go to sim/demo.ts (--interval 30s, --rounds N, --http 127.0.0.1:9273,
# --influx-port 8086, --influx-rpc-port, --octet 20, --snmp-port 1161,
# --syslog-port 15140, --flow-port 20550, --mail-port 0, --data DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$KW_ROOT"
exec node sim/demo.ts "$@"
