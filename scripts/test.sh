#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian packages for the real
# peers, Node 24 if the system's is too old, npm packages), type-checks, runs
# vitest, and ends with one plain line "N passed, N failed".
set -euo pipefail
# Chromium and a Thai font: a test opens the printable report in headless
# Chromium and prints it to PDF. nfdump (nfcapd) is the reference flow
# collector and softflowd a real exporter for the traffic-archive tests;
# openssl makes their TLS certificate.
KW_EXTRA_PACKAGES="${KW_EXTRA_PACKAGES:-} chromium fonts-thai-tlwg nfdump softflowd openssl"
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$KW_ROOT"

# chronyd is the tests' NTP server. It is unpacked, not installed: installing
# Debian's chrony would replace this machine's own time service.
if [ ! -x .tools/chrony/usr/sbin/chronyd ]; then
  kw_say "unpacking Debian package chrony into .tools/chrony (tests' NTP server)"
  tmp="$(mktemp -d)"
  chmod 777 "$tmp"
  (cd "$tmp" && { apt-get download chrony >/dev/null 2>&1 || { kw_sudo apt-get update -qq && apt-get download chrony >/dev/null; }; })
  mkdir -p .tools/chrony
  dpkg -x "$tmp"/chrony_*.deb .tools/chrony
  rm -rf "$tmp"
fi

# loggen (syslog-ng's load generator) sends syslog over UDP, TCP and TLS in
# the tests. Unpacked like chrony: installing syslog-ng-core would start a
# second syslog daemon on this machine.
if [ ! -x .tools/syslog-ng/usr/bin/loggen ]; then
  kw_say "unpacking Debian package syslog-ng-core into .tools/syslog-ng (tests' syslog sender, loggen)"
  tmp="$(mktemp -d)"
  chmod 777 "$tmp"
  (cd "$tmp" && { apt-get download syslog-ng-core >/dev/null 2>&1 || { kw_sudo apt-get update -qq && apt-get download syslog-ng-core >/dev/null; }; })
  mkdir -p .tools/syslog-ng
  dpkg -x "$tmp"/syslog-ng-core_*.deb .tools/syslog-ng
  rm -rf "$tmp"
fi

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
