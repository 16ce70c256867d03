#!/usr/bin/env bash
# On demand, not in CI: installs the reference poller, then runs bench/poll/run.ts.
set -euo pipefail
KW_EXTRA_PACKAGES=prometheus-snmp-exporter source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh"
cd "$KW_ROOT"
exec node bench/poll/run.ts "$@"
