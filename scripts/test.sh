#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian packages for the real
# peers, Node 24 if the system's is too old, npm packages), type-checks, runs
# vitest, and ends with one plain line "N passed, N failed".
set -euo pipefail
# Chromium and a Thai font: a test opens the printable report in headless
# Chromium and prints it to PDF. nfdump (nfcapd) is the reference flow
# collector and softflowd a real exporter for the traffic-archive tests;
# openssl makes their TLS certificate.
KW_EXTRA_PACKAGES="${KW_EXTRA_PACKAGES:-} chromium fonts-thai-tlwg poppler-utils nfdump softflowd openssl faketime"
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$KW_ROOT"

source "$KW_ROOT/scripts/unpack.sh"
# chronyd is the tests' NTP server and loggen (syslog-ng's load generator)
# their syslog sender over UDP, TCP and TLS. Unpacked, not installed:
# installing chrony or syslog-ng-core would replace this machine's own time
# service or start a second syslog daemon.
[ -x .tools/chrony/usr/sbin/chronyd ] || kw_unpack chrony .tools/chrony
[ -x .tools/syslog-ng/usr/bin/loggen ] || kw_unpack syslog-ng-core .tools/syslog-ng

echo "== type check (tsc --noEmit)"
tc_status=0
tsc --noEmit -p . || tc_status=$?

echo "== tests (vitest)"
report="$(mktemp)"
vt_status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || vt_status=$?

passed=0 failed=0 skipped=0
if [ -s "$report" ]; then
  read -r passed failed skipped < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(r.numPassedTests, r.numFailedTests, skipped);' "$report")
fi
rm -f "$report"
if [ "$tc_status" -ne 0 ]; then
  echo "type check failed"
  failed=$((failed + 1))
fi
if [ "$vt_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # vitest failed without a failing test: a suite that could not load, or no report.
  failed=$((failed + 1))
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
[ "$failed" -eq 0 ]
