#!/usr/bin/env bash
# On demand, not in CI: installs the reference poller, then runs bench/poll/run.ts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh" prometheus-snmp-exporter
cd "$KW_ROOT"
exec node bench/poll/run.ts "$@"
