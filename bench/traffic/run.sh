#!/usr/bin/env bash
# The traffic-archive benchmark (on demand, not in CI): installs the
# references (nfdump for nfcapd, syslog-ng-core's libraries; syslog-ng and
# loggen are unpacked into .tools/), then runs bench/traffic/run.ts.
# Usage: bash bench/traffic/run.sh [--seconds 10] [--rates 100000,200000,300000] [--keep]
set -euo pipefail
KW_EXTRA_PACKAGES="nfdump libpcre3 libivykis0 libnet1 libjson-c5 libwrap0" source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh"
cd "$KW_ROOT"
source scripts/unpack.sh
[ -x .tools/syslog-ng/usr/sbin/syslog-ng ] || kw_unpack syslog-ng-core .tools/syslog-ng
pkill -f 'nfcapd -w /tmp/kw-bench' 2>/dev/null || true
exec node bench/traffic/run.ts "$@"
