# Sourced: kw_unpack PACKAGE DIR: unpacks a Debian package into DIR (under
# the project's .tools/) without installing it, for programs the tests and
# benchmarks run but this machine must not have as services (chronyd,
# syslog-ng). Uses `apt-get download` (apt-get update first when needed).
kw_unpack() {
  local pkg="$1" dest="$2" tmp
  kw_say "unpacking Debian package $pkg into $dest"
  tmp="$(mktemp -d)"
  chmod 777 "$tmp"
  (cd "$tmp" && { apt-get download "$pkg" >/dev/null 2>&1 || { kw_sudo apt-get update -qq && apt-get download "$pkg" >/dev/null; }; })
  mkdir -p "$dest"
  dpkg -x "$tmp"/"${pkg}"_*.deb "$dest"
  rm -rf "$tmp"
}
