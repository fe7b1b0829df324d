# SPDX-License-Identifier: ISC
# lib.sh - helpers for the package tests (sourced by tests/package/t_*.sh
# after tests/cli/lib.sh). Not a test itself (ctest runs only t_*.sh).
#
#   pkg_build deb|rpm [-k]   scripts/package into $WORK/pkgs; prints the path
#                            of the package (with -k, PKG_BUILD_DIR is the
#                            kept build directory)
#   pkg_mirrors              "URI SUITE" for every enabled Debian entry of
#                            this machine's apt sources (one-line .list and
#                            deb822 .sources) whose suite is bookworm,
#                            bookworm-updates or bookworm-security
#   pkg_debootstrap ROOT     a clean Debian 12 minbase root at ROOT from the
#                            first bookworm mirror, with all of pkg_mirrors
#                            in its sources.list; log in ROOT.debootstrap.log
#   pkg_mount TYPE SRC DIR   mount, remembered for pkg_umount_all
#   pkg_umount_all           unmount what pkg_mount mounted, last first
#   pkg_safe_rm DIR          rm -rf DIR unless something is mounted below it
#   pkg_syslog_start SOCK LOG / pkg_syslog_stop
#                            a syslog receiver (UNIX datagram) at SOCK
#                            (e.g. ROOT/dev/log) appending to LOG
#   pkg_wait_for FILE PATTERN    wait (up to 10 s) for a line matching
#                            the extended regex PATTERN in FILE
: "${SRCDIR:?set by ctest}"
PKG_MOUNTS=()
PKG_SYSLOG_PID=

pkg_build() {
  local kind=$1 keep=${2:-} log=$WORK/package-$1.log out
  mkdir -p "$WORK/pkgs"
  if ! out=$("$SRCDIR/scripts/package" "--$kind" ${keep:+-k} -o "$WORK/pkgs" 2>"$log"); then
    cat "$log" >&2
    return 1
  fi
  if [ -n "$keep" ]; then
    PKG_BUILD_DIR=$(sed -n 's/^package: build directory kept: //p' "$log")
  fi
  printf '%s\n' "$out" | tail -n 1
}

pkg_mirrors() {
  python3 - /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'PY'
import sys, re, os
want = ("bookworm", "bookworm-updates", "bookworm-security")
seen = []
def emit(uri, suite):
    if suite in want and (uri, suite) not in seen:
        seen.append((uri, suite))
for path in sys.argv[1:]:
    if not os.path.isfile(path):
        continue
    text = open(path, encoding="utf-8", errors="replace").read()
    if path.endswith(".sources"):
        for para in re.split(r"\n\s*\n", text):
            f = {}
            for line in para.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                k, v = line.split(":", 1)
                f[k.strip().lower()] = v.split()
            if "deb" not in f.get("types", []) or f.get("enabled", ["yes"])[0].lower() == "no":
                continue
            for uri in f.get("uris", []):
                for suite in f.get("suites", []):
                    emit(uri.rstrip("/"), suite)
    else:
        for line in text.splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                emit(line[1].rstrip("/"), line[2])
for uri, suite in seen:
    print(uri, suite)
PY
}

pkg_debootstrap() {
  local root=$1 mirror
  mirror=$(pkg_mirrors | awk '$2 == "bookworm" { print $1; exit }')
  if [ -z "$mirror" ]; then
    echo "no bookworm entry in /etc/apt/sources.list or /etc/apt/sources.list.d/" >&2
    return 1
  fi
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
    tail -n 20 "$root.debootstrap.log" >&2; return 1; }
  pkg_mirrors | awk '{ print "deb " $1 " " $2 " main" }' >"$root/etc/apt/sources.list"
}

pkg_mount() {
  mount -t "$1" "$2" "$3" && PKG_MOUNTS+=("$3")
}

pkg_umount_all() {
  local i
  for ((i = ${#PKG_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${PKG_MOUNTS[$i]}" 2>/dev/null || umount -l "${PKG_MOUNTS[$i]}" 2>/dev/null
  done
  PKG_MOUNTS=()
}

pkg_safe_rm() {
  local dir=$1
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if awk -v d="$dir" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "not removing $dir: something is still mounted below it" >&2
    return 1
  fi
  rm -rf "$dir"
}

pkg_syslog_start() {
  local sock=$1 log=$2 i
  rm -f "$sock"
  python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536).rstrip(b"\n") + b"\n")
' "$sock" "$log" &
  PKG_SYSLOG_PID=$!
  for i in $(seq 1 100); do
    [ -S "$sock" ] && return 0
    sleep 0.05
  done
  return 1
}

pkg_syslog_stop() {
  [ -n "$PKG_SYSLOG_PID" ] || return 0
  kill "$PKG_SYSLOG_PID" 2>/dev/null
  wait "$PKG_SYSLOG_PID" 2>/dev/null
  PKG_SYSLOG_PID=
}

pkg_wait_for() {
  local file=$1 pattern=$2 i
  for i in $(seq 1 100); do
    grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
