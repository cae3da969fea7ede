#!/bin/sh
# Extracts Linux 6.12's userspace VMBus ring (tools/hv/vmbus_bufring.c and vmbus_bufring.h, BSD-3-Clause) from
# Debian's linux-source-6.12 package into <work-dir>, cached, and prints the directory holding the two files
# on its last line of stdout. Used by build.sh (the interop harness) and Scripts/ring-baselines/build.sh (the
# benchmark baseline). Nothing from Linux is committed to this repository.
#
# Usage: extract.sh <work-dir>
#   Exit 3 if the Linux source tarball is missing. The extraction (about 15 s) is cached in <work-dir>,
#   keyed by the tarball's size and modification time.
# Environment: LINUX_SOURCE_TARBALL overrides /usr/src/linux-source-6.12.tar.xz.
set -eu

work=${1:?usage: extract.sh <work-dir>}
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}

if [ ! -f "$tarball" ]; then
    echo "foreign-ring: $tarball not found. The interop test needs Linux 6.12's tools/hv/vmbus_bufring.c:" >&2
    echo "foreign-ring: run 'apt-get install -y linux-source-6.12' (CI installs it)." >&2
    exit 3
fi

mkdir -p "$work"
stamp=$(stat -c '%s-%Y' "$tarball")
src="$work/linux-$stamp"
if [ ! -f "$src/vmbus_bufring.c" ] || [ ! -f "$src/vmbus_bufring.h" ]; then
    tmp=$(mktemp -d "$work/extract.XXXXXX")
    tar -xJf "$tarball" -C "$tmp" --wildcards --no-wildcards-match-slash \
        '*/tools/hv/vmbus_bufring.c' '*/tools/hv/vmbus_bufring.h'
    mkdir -p "$tmp/out"
    find "$tmp" -path '*/tools/hv/vmbus_bufring.[ch]' -exec cp {} "$tmp/out/" \;
    [ -f "$tmp/out/vmbus_bufring.c" ] && [ -f "$tmp/out/vmbus_bufring.h" ] || {
        echo "foreign-ring: tools/hv/vmbus_bufring.[ch] not found in $tarball" >&2; rm -rf "$tmp"; exit 5; }
    # Publish atomically: concurrent builds either see nothing or the complete directory.
    if ! mv -T "$tmp/out" "$src" 2>/dev/null; then
        [ -f "$src/vmbus_bufring.c" ] || { echo "foreign-ring: could not publish $src" >&2; rm -rf "$tmp"; exit 5; }
    fi
    rm -rf "$tmp"
fi

echo "$src"
